"""The ``coldstart-peft`` command line: one small module per sub-command."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from coldstart_peft import __version__
from coldstart_peft.errors import ColdStartError


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every sub-command registered."""
    from coldstart_peft.cli import demo, evaluate, plugins, recommend, search, train

    parser = argparse.ArgumentParser(
        prog="coldstart-peft",
        description="Cold-start recommendation and search with parameter-efficient fine-tuning.",
    )
    parser.add_argument("--version", action="version", version=f"coldstart-peft {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in (plugins, demo, train, evaluate, recommend, search):
        module.register(commands)
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
    args = build_parser().parse_args(argv)
    _log_to_stderr()
    try:
        return int(args.func(args) or 0)
    except ColdStartError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
