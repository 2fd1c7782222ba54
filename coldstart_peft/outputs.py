"""Where commands write: check a path before the work starts, and replace only what the library wrote.

A command's output path may already hold something: an earlier report of ours (replacing it
is the point of rerunning) or the user's own data (the labeled pairs, notes, a results file).
Every writer asks here first, before the minutes or hours of work that produce the output,
and then writes through a temporary sibling, so a crash never leaves half a file behind.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from coldstart_peft.errors import OverwriteRefusedError, UnwritableOutputError

REPORT_FORMAT = "coldstart-peft-report"
"""``format`` field of every JSON report a command writes (``evaluate --json``)."""

MARKDOWN_MARK = "<!-- coldstart-peft-report -->"
"""First line of every markdown report (invisible when rendered), so a rerun may replace it."""

_NUMBER_LIST = re.compile(r"\[\n\s*(-?\d[\d.eE+-]*(?:,\n\s*-?\d[\d.eE+-]*)*)\n\s*\]")
"""A list of plain numbers as ``json.dumps(indent=2)`` writes it, one per line. Only structure spans
lines (a newline inside a JSON string is escaped), so no string's text can match."""


def _compact_number_lists(text: str) -> str:
    """``text`` with every list of plain numbers on one line: per-user ranks stay a line each, not a line per user."""
    return _NUMBER_LIST.sub(lambda m: "[" + ", ".join(part.strip() for part in m.group(1).split(",")) + "]", text)


def json_format(path: str | Path) -> str | None:
    """The ``format`` field of a JSON-object file, or ``None`` for anything else (unreadable, another shape)."""
    try:
        with Path(path).open("rb") as handle:
            payload = json.loads(handle.read(64 << 20))
    except (OSError, ValueError, RecursionError):
        return None
    return payload.get("format") if isinstance(payload, dict) else None


def is_report_file(path: str | Path) -> bool:
    """Whether ``path`` is a report written by :func:`write_json_report`."""
    return json_format(path) == REPORT_FORMAT


def first_existing(path: Path) -> Path:
    """``path`` or its nearest existing ancestor (the folder a new path would be created in)."""
    path = Path(os.path.abspath(path))
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _probe(folder: Path) -> None:
    """Create and remove a file in ``folder``: the only check that also holds on a read-only mount and for root."""
    handle, name = tempfile.mkstemp(prefix=".coldstart-probe-", dir=folder)
    os.close(handle)
    os.unlink(name)


def check_writable_dir(path: str | Path, what: str) -> Path:
    """Raise unless a folder at ``path`` exists and is writable, or could be created there.

    Nothing is created: a folder that does not exist yet is judged by its nearest existing ancestor.

    Args:
        path: the folder.
        what: how to name it in the message (``"--checkpoint-dir"``).

    Raises:
        UnwritableOutputError: ``path`` (or the ancestor it would be created in) is a file, or
            cannot be written (read-only filesystem, permissions).
    """
    path = Path(path)
    base = first_existing(path)
    if not base.is_dir():
        raise UnwritableOutputError(f"{what} {path} cannot be a folder: {base} is a file. Choose another path")
    try:
        _probe(base)
    except OSError as exc:
        raise UnwritableOutputError(
            f"{what} {path} is not writable ({exc.strerror or exc}, at {base}); choose a folder on a writable disk"
        ) from None
    return path


def check_output_file(path: str | Path, is_ours: Callable[[Path], bool], what: str) -> Path:
    """Raise unless ``path`` can be written: absent, or a file this library wrote, in a writable folder.

    Args:
        path: the file the command will write.
        is_ours: recognizes a file of the kind the command writes (see :func:`is_report_file`).
        what: how to name it in the message (``"--json"``).

    Raises:
        OverwriteRefusedError: ``path`` is a folder or a link, or a file the library did not write.
        UnwritableOutputError: its folder cannot be created or written.
    """
    path = Path(path)
    if path.is_symlink() or path.is_dir():
        raise OverwriteRefusedError(f"{what} {path} is a folder or a link, not a file this library wrote; choose a file path")
    if path.exists() and not is_ours(path):
        raise OverwriteRefusedError(
            f"{what} {path} exists and is not a file this library wrote; writing would lose it. "
            "Choose a new path, or move the file away first"
        )
    check_writable_dir(path.parent, f"the folder of {what}")
    return path


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` through a temporary sibling renamed into place.

    Raises:
        UnwritableOutputError: the write failed (disk full, permissions); ``path`` is as before.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex[:8]}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:
        raise UnwritableOutputError(f"writing {path} failed ({exc}); anything there before is untouched") from exc
    finally:
        tmp.unlink(missing_ok=True)
    return path


def write_json_report(path: str | Path, report: dict[str, Any]) -> Path:
    """Write a command's report as JSON, marked with :data:`REPORT_FORMAT` so a rerun may replace it.

    Raises:
        OverwriteRefusedError: ``path`` holds a file this library did not write.
    """
    check_output_file(path, is_report_file, "report file")
    text = json.dumps({"format": REPORT_FORMAT, **report}, indent=2, default=str)
    return write_text_atomic(path, _compact_number_lists(text))


def is_markdown_report(path: str | Path) -> bool:
    """Whether ``path`` is a markdown report written by :func:`write_markdown_report`."""
    try:
        with Path(path).open(encoding="utf-8") as handle:
            return handle.readline().rstrip("\n") == MARKDOWN_MARK
    except (OSError, UnicodeDecodeError):
        return False


def write_markdown_report(path: str | Path, text: str) -> Path:
    """Write a markdown report under :data:`MARKDOWN_MARK`, refusing to replace a file the library did not write.

    Raises:
        OverwriteRefusedError: ``path`` holds a file this library did not write.
    """
    check_output_file(path, is_markdown_report, "report file")
    return write_text_atomic(path, f"{MARKDOWN_MARK}\n{text}")


def check_report_files(folder: str | Path, name: str, plots: tuple[str, ...] = ()) -> None:
    """Raise, before a benchmark's work starts, unless it may write ``NAME.json``, ``NAME.md`` and ``plots`` in ``folder``.

    A plot may be replaced only beside our own ``NAME.json``: images carry no mark of their own, and
    a folder holding our report is a folder a run of ours wrote.

    Example:
        >>> check_report_files(out, "results", plots=("pareto.png",))  # then hours of work
        >>> write_report_files(out, "results", report, markdown(report))

    Raises:
        OverwriteRefusedError: one of them exists and is not a file this library wrote.
        UnwritableOutputError: ``folder`` cannot be created or written.
    """
    folder = Path(folder)
    check_output_file(folder / f"{name}.json", is_report_file, f"{name}.json")
    check_output_file(folder / f"{name}.md", is_markdown_report, f"{name}.md")
    ours = is_report_file(folder / f"{name}.json")
    for plot in plots:
        check_output_file(folder / plot, lambda _: ours, plot)


def write_report_files(folder: str | Path, name: str, report: dict[str, Any], markdown: str) -> None:
    """Write ``NAME.json`` and ``NAME.md`` in ``folder`` (see :func:`check_report_files`)."""
    check_report_files(folder, name)
    write_json_report(Path(folder) / f"{name}.json", report)
    write_markdown_report(Path(folder) / f"{name}.md", markdown)


def replace_dir(tmp: Path, target: Path) -> None:
    """Move ``tmp`` to ``target``; the old ``target`` survives until the new one is in place."""
    if target.exists():
        old = target.with_name(f".{target.name}.old-{uuid.uuid4().hex[:8]}")
        os.replace(target, old)
        os.replace(tmp, target)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, target)
