"""The ``coldstart-peft`` command line: one small module per sub-command.

A sub-command's module is imported only when that command runs (or asks for its ``-h``):
``coldstart-peft -h`` and ``--version`` answer without importing torch, transformers or peft.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from coldstart_peft import __version__
from coldstart_peft.errors import ColdStartError  # no third-party imports

COMMANDS: dict[str, str] = {
    # name: the one-line help of the top-level listing (the module's own register() repeats it;
    # tests/test_cli_startup.py checks the two agree).
    "plugins": "list installed methods and scorers, and plugin failures",
    "demo": "train LoRA on a generated shop and compare with popularity",
    "train": "fine-tune on a dataset's cold-start split (one adapter or one per domain) or a labeled-pairs file",
    "evaluate": "evaluate a baseline, an adapter or a bank folder on a cold-start split, or on a labeled-pairs file",
    "recommend": "recommend catalog items for a user's clicked items",
    "search": "search a catalog with a free-text query",
    "export": "export a bi-encoder adapter as a sentence-transformers model (weights merged)",
}
"""Sub-commands in listing order; ``coldstart_peft.cli.<name>`` has ``register(commands)`` and ``run(args)``."""


def _command_in(argv: Sequence[str]) -> str | None:
    """The sub-command ``argv`` names: its first token that is not an option (the top level has no valued options)."""
    return next((token for token in argv if not token.startswith("-")), None)


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The top-level parser.

    Args:
        argv: the arguments it will parse. Only the sub-command they name is imported and
            registered in full; the others are listed by name and help alone. ``None``
            registers every sub-command in full.
    """
    parser = argparse.ArgumentParser(
        prog="coldstart-peft",
        description="Cold-start recommendation and search with parameter-efficient fine-tuning.",
    )
    parser.add_argument("--version", action="version", version=f"coldstart-peft {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    chosen = None if argv is None else _command_in(argv)
    for name, help_text in COMMANDS.items():
        if argv is None or name == chosen:
            importlib.import_module(f"coldstart_peft.cli.{name}").register(commands)
        else:
            commands.add_parser(name, help=help_text, add_help=False)
    return parser


class _CurrentStderr(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at the time (a redirected or captured one included)."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _value) -> None:
        pass


def _log_to_stderr() -> None:
    """Phase lines and the precision decision go to stderr, beside the progress bars."""
    logger = logging.getLogger("coldstart_peft")
    if not any(isinstance(h, _CurrentStderr) for h in logger.handlers):
        handler = _CurrentStderr()
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit code.

    Errors the library raises on purpose (:class:`ColdStartError`) print one clear line and
    exit with status 2 instead of a traceback.
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser(argv).parse_args(argv)
    _log_to_stderr()
    try:
        return int(args.func(args) or 0)
    except ColdStartError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
