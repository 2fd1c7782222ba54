"""The one table reader: CSV, TSV, JSONL, Parquet and RecBole atomic files, for datasets and pairs.

Dataset tables and labeled-pairs files reach the same reader, so a format that works for one
works for the other. Dataset loaders read leniently (a broken JSON line is skipped and counted
in the :class:`LoadReport`); the pairs reader reads strictly (the same line is an error naming
its line number), because a few hand-labeled pairs are worth fixing one by one.

The standard library's ``csv`` module reads the text formats: it is quote-aware (RecBole item
files quote titles holding tabs and newlines) and lets the report count each repaired row,
which a whole-frame reader such as pandas would hide. Parquet goes through pyarrow.
"""

from __future__ import annotations

import csv
import gzip
import json
from dataclasses import dataclass, field
from pathlib import Path

from coldstart_peft.data.files import open_text, resolve_file
from coldstart_peft.data.schema import LoadReport
from coldstart_peft.errors import MalformedFileError

TABLE_SUFFIXES = {
    ".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".json": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet",
    ".inter": "atomic", ".item": "atomic", ".user": "atomic",
}  # fmt: skip
"""File suffix (before an optional ``.gz``) -> format; ``.inter``/``.item``/``.user`` are RecBole atomic files."""

LABELED_PAIR_COLUMNS = ("user_text", "item_text", "label")
"""The columns every labeled-pairs file has (``domain`` is optional)."""

ATOMIC_TYPES = ("token", "token_seq", "float", "float_seq")
"""RecBole's feature types, written in an atomic file's header as ``name:type``."""


@dataclass
class Table:
    """The rows of one file, with its column names and where each row came from.

    Args:
        path: the file read.
        format: ``"csv"``, ``"tsv"``, ``"jsonl"``, ``"parquet"`` or ``"atomic"``.
        columns: column names in file order (JSONL: in order of first appearance).
        rows: one dict per record; CSV, TSV and atomic values are strings.
        numbers: the line (text formats) or row (Parquet) number of each row, for messages.
        types: column -> RecBole type, for atomic files; empty otherwise.
        lines: physical lines below the header, for atomic files (a quoted newline costs one more);
            ``None`` otherwise, where the report counts records.
    """

    path: Path
    format: str
    columns: list[str]
    rows: list[dict]
    numbers: list[int] = field(default_factory=list)
    types: dict[str, str] = field(default_factory=dict)
    lines: int | None = None


def table_format(path: str | Path) -> str | None:
    """The format :func:`read_rows` reads ``path`` as, from its suffix; ``None`` when unknown."""
    suffixes = [s.lower() for s in Path(path).suffixes if s.lower() != ".gz"]
    return TABLE_SUFFIXES.get(suffixes[-1]) if suffixes else None


def read_rows(
    path: str | Path, report: LoadReport | None = None, strict: bool = False, what: str = "table", format: str | None = None
) -> Table:
    """Read a table file (gzip optional) into a :class:`Table`.

    Args:
        path: a ``.csv``, ``.tsv``, ``.jsonl``/``.json``, ``.parquet`` or RecBole ``.inter``/``.item``/``.user`` file.
        report: receives the file name, row counts and skipped or repaired rows.
        strict: raise on a line that is not a JSON record (or an atomic row of the wrong width) instead of
            skipping and counting it.
        what: what the file is, for the message on an unknown suffix (``"pairs"``).
        format: read as this format (a value of :data:`TABLE_SUFFIXES`) whatever the suffix says.

    Raises:
        MalformedFileError: an unknown suffix, text that is not UTF-8, a bad line with ``strict``, an unreadable
            Parquet file.
        ImportError: a Parquet file without ``pyarrow`` (install ``coldstart-peft[parquet]``).
    """
    kind = format or table_format(path)
    if kind not in TABLE_SUFFIXES.values():
        raise MalformedFileError(
            f"cannot read {path}: unknown {what} file type; use .csv, .tsv, .jsonl or .parquet (optionally .gz)"
        )
    path = resolve_file(path)
    report = report if report is not None else LoadReport()
    report.source.append(str(path))
    try:
        if kind == "parquet":
            table = _read_parquet(path)
        elif kind == "jsonl":
            table = _read_jsonl(path, report, strict)
        else:
            table = _read_delimited(path, kind, report, strict)
    except csv.Error as error:
        raise MalformedFileError(f"{path} is not a readable {kind.upper()} file ({error}); check its quoting") from None
    report.rows_read[path.name] += len(table.rows) if table.lines is None else table.lines
    return table


def read_table(path: str | Path, report: LoadReport | None = None) -> list[dict]:
    """Read a table file into row dicts, leniently (see :func:`read_rows`).

    Example:
        >>> read_table("items.parquet")[0]["title"]
        'Red lipstick'
    """
    return read_rows(path, report).rows


def _decoded(lines, path):
    """Iterate ``lines``, turning a decoding failure into an error that says how to fix the file."""
    try:
        yield from lines
    except UnicodeDecodeError as error:
        raise MalformedFileError(
            f"{path} is not UTF-8 text ({error.reason} at byte {error.start}); re-encode it as UTF-8, "
            "e.g. iconv -f latin1 -t utf-8"
        ) from None


def _read_parquet(path: Path) -> Table:
    try:
        import pyarrow.parquet as pq
    except ImportError as error:
        raise ImportError("reading Parquet needs pyarrow: pip install 'coldstart-peft[parquet]'") from error
    import pyarrow

    try:
        source = gzip.open(path, "rb") if path.suffix == ".gz" else path
        arrow = pq.read_table(source)
    except (pyarrow.ArrowException, OSError) as error:
        raise MalformedFileError(f"{path} is not a readable Parquet file ({error}); rewrite it or export CSV") from None
    rows = arrow.to_pylist()
    return Table(path, "parquet", list(arrow.column_names), rows, list(range(1, len(rows) + 1)))


def _read_jsonl(path: Path, report: LoadReport, strict: bool) -> Table:
    rows, numbers, columns = [], [], {}
    with open_text(path) as stream:
        for number, line in enumerate(_decoded(stream, path), start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except (json.JSONDecodeError, RecursionError) as error:  # nested deeper than the parser's stack
                if strict:
                    reason = getattr(error, "msg", "nested too deeply")
                    raise MalformedFileError(f"{path}:{number} is not valid JSON ({reason}); fix or remove the line") from None
                report.skip("bad_json", line)
                continue
            if not isinstance(row, dict):  # valid JSON but not a record, e.g. a bare number or list
                if strict:
                    raise MalformedFileError(f"{path}:{number} must be a JSON object: one record per line")
                report.skip("not_an_object", line)
                continue
            columns.update(dict.fromkeys(row))
            rows.append(row)
            numbers.append(number)
    return Table(path, "jsonl", list(columns), rows, numbers)


def _read_delimited(path: Path, kind: str, report: LoadReport, strict: bool) -> Table:
    with open_text(path) as stream:
        reader = csv.reader(_decoded(stream, path), delimiter="," if kind == "csv" else "\t")
        header = next(reader, None) or []
        if header:  # a spreadsheet's byte-order mark would otherwise become part of the first column's name
            header[0] = header[0].removeprefix("\ufeff")
        types: dict[str, str] = {}
        if kind == "atomic":
            header, types = _atomic_header(header, path)
        rows, numbers = [], []
        for values in reader:
            if not values:
                continue
            if len(values) > len(header):
                if kind == "atomic":  # a tab-separated row one field too wide is a shifted row, not an extra
                    if strict:
                        raise MalformedFileError(f"{path}:{reader.line_num} has {len(values)} fields, the header {len(header)}")
                    report.skip("wrong_field_count", "\t".join(values))
                    continue
                report.repair("extra_fields_ignored", str(values[len(header) :]))
            if kind == "atomic":  # RecBole quotes a field holding a newline or a tab; count each such row
                if any("\n" in v or "\r" in v for v in values):
                    report.repair("multiline_field", "\t".join(values))
                if any("\t" in v for v in values):
                    report.repair("embedded_tab", "\t".join(values))
            rows.append(dict(zip(header, values + [""] * (len(header) - len(values)))))
            numbers.append(reader.line_num)
    lines = max(reader.line_num - 1, 0) if kind == "atomic" else None
    return Table(path, kind, header, rows, numbers, types, lines)


def _atomic_header(header: list[str], path: Path) -> tuple[list[str], dict[str, str]]:
    """Split RecBole's ``name:type`` header cells; a cell without a type is read as ``token``."""
    names, types = [], {}
    for cell in header:
        name, _, kind = cell.strip().partition(":")
        if kind and kind not in ATOMIC_TYPES:
            raise MalformedFileError(
                f"{path}: header cell {cell!r} has type {kind!r}; RecBole atomic types are {', '.join(ATOMIC_TYPES)}"
            )
        names.append(name)
        types[name] = kind or "token"
    return names, types


def peek_columns(path: str | Path) -> list[str]:
    """The column names of a table file, read from its start only (JSONL: the first record's keys).

    Returns:
        The names; ``[]`` when the start of the file is not a readable header or record.
    """
    kind = table_format(path)
    try:
        if kind == "parquet":
            import pyarrow.parquet as pq

            return list(pq.read_schema(resolve_file(path)).names)
        with open_text(path) as stream:
            for line in stream:
                if not line.strip():
                    continue
                if kind in ("csv", "tsv", "atomic"):
                    cells = next(csv.reader([line], delimiter="," if kind == "csv" else "\t"), [])
                    cells = [c.removeprefix("\ufeff") for c in cells]
                    return [c.partition(":")[0] for c in cells] if kind == "atomic" else cells
                record = json.loads(line)
                return list(record) if isinstance(record, dict) else []
    except (ValueError, OSError, ImportError, csv.Error, RecursionError):
        return []
    return []


def first_line(path: str | Path, limit: int = 120) -> str:
    """The first non-blank line of a text file, cut to ``limit`` characters (``""`` when unreadable)."""
    try:
        with open_text(path, errors="replace") as stream:
            for line in stream:
                if line.strip():
                    return line.strip()[:limit]
    except OSError:
        pass
    return ""
