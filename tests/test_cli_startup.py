"""The command line starts fast: help and version import no deep-learning library."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

import pytest

from coldstart_peft.cli import COMMANDS, build_parser

HEAVY = ("torch", "transformers", "peft", "accelerate")

_PROBE = """
import json, sys
from coldstart_peft.cli import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
print(json.dumps(sorted(m for m in {heavy} if m in sys.modules)))
"""


@pytest.mark.parametrize("argv", [["-h"], ["--version"], []])
def test_help_and_version_import_no_deep_learning_library(argv):
    probe = _PROBE.format(heavy=list(HEAVY))
    done = subprocess.run([sys.executable, "-c", probe, *argv], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    *shown, modules = done.stdout.strip().splitlines() or [""]
    assert json.loads(modules) == []
    if argv == ["--version"]:
        assert shown == ["coldstart-peft 0.1.0"]
    elif argv == ["-h"]:
        assert all(f"    {name}" in done.stdout for name in COMMANDS)
    else:
        assert "required: COMMAND" in done.stderr


def _sub_helps(parser: argparse.ArgumentParser) -> dict[str, str]:
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return {choice.dest: choice.help for choice in action._choices_actions}


def test_the_quick_listing_says_what_each_command_module_says():
    assert _sub_helps(build_parser([])) == COMMANDS
    assert _sub_helps(build_parser(None)) == COMMANDS


def test_a_command_parses_in_full_when_named():
    args = build_parser(["evaluate", "--baseline", "popularity"]).parse_args(["evaluate", "--baseline", "popularity"])
    assert args.command == "evaluate" and args.baseline == "popularity"
    with pytest.raises(SystemExit):  # the other commands are only listed: their flags are not known
        build_parser(["evaluate"]).parse_args(["train", "--out", "x"])


def test_every_option_states_its_default_at_most_once_and_never_as_none():
    sub = next(a for a in build_parser(None)._actions if isinstance(a, argparse._SubParsersAction))
    for name, parser in sub.choices.items():
        for action in parser._actions:
            if action.help in (None, argparse.SUPPRESS):
                continue
            text = action.help % {"default": action.default, "prog": name} if "%(" in action.help else action.help
            assert text.lower().count("default") <= 1, (name, action.option_strings, text)
            assert "(default: None)" not in text, (name, action.option_strings, text)
