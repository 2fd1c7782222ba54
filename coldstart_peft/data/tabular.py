"""Generic CSV / JSONL / Parquet tables with a column mapping.

A user's own catalog rarely uses our column names, so :class:`ColumnMapping` says which of
theirs means what. Rows with an empty required value are skipped and counted.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from coldstart_peft.data.amazon2014 import domain_from_path
from coldstart_peft.data.files import open_text, resolve_file
from coldstart_peft.data.schema import FALLBACK_DOMAIN, Dataset, Interaction, Item, LoadReport, check_unique
from coldstart_peft.data.timestamps import count_ties, parse_timestamp
from coldstart_peft.errors import MalformedFileError, MissingColumnsError


@dataclass
class ColumnMapping:
    """Which source column holds each field; ``None`` means the source lacks it.

    Args:
        user_id: user column of the interactions table.
        item_id: item column in both tables.
        order: timestamp column (ISO-8601, epoch seconds or milliseconds) or position column; each
            user's events are sorted by it, ties in file order; file order when ``None``.
        label: rating / label column.
        title: item title column.
        brand: item brand column.
        categories: category path column; a list, or a string split on ``category_separator``.
        price: price column.
        description: description column.
        domain: explicit domain column; otherwise the domain comes from ``domain_level`` of the path.
        category_separator: separator inside a string category path.
        domain_level: which level of the path is the domain.
        extra: other item columns to keep in ``Item.attributes``.
    """

    user_id: str = "user_id"
    item_id: str = "item_id"
    order: str | None = "timestamp"
    label: str | None = None
    title: str = "title"
    brand: str | None = None
    categories: str | None = None
    price: str | None = None
    description: str | None = None
    domain: str | None = None
    category_separator: str = ">"
    domain_level: int = 1
    extra: list[str] = field(default_factory=list)


def read_table(path: str | Path, report: LoadReport | None = None) -> list[dict]:
    """Read a ``.csv``, ``.tsv``, ``.jsonl`` or ``.parquet`` file (gzip optional) into row dicts.

    Raises:
        MalformedFileError: the extension is not one of those.
        ImportError: a Parquet file without ``pyarrow`` (install ``coldstart-peft[parquet]``).
    """
    path = resolve_file(path)
    report = report if report is not None else LoadReport()
    report.source.append(str(path))
    suffixes = [s for s in path.suffixes if s != ".gz"]
    kind = suffixes[-1] if suffixes else ""
    if kind == ".parquet":
        try:
            import pyarrow.parquet as pq
        except ImportError as error:
            raise ImportError("reading Parquet needs pyarrow: pip install 'coldstart-peft[parquet]'") from error
        rows = pq.read_table(path).to_pylist()
    elif kind in (".csv", ".tsv"):
        with open_text(path) as stream:
            rows = list(_decoded(csv.DictReader(stream, delimiter="\t" if kind == ".tsv" else ","), path))
        for row in rows:
            if None in row:  # csv puts surplus fields under the key None
                report.repair("extra_fields_ignored", str(row.pop(None)))
    elif kind in (".jsonl", ".json"):
        rows = []
        with open_text(path) as stream:
            for line in _decoded(stream, path):
                if line.strip():
                    try:
                        row = json.loads(line)
                    except (json.JSONDecodeError, RecursionError):  # nested deeper than the parser's stack
                        report.skip("bad_json", line)
                        continue
                    if isinstance(row, dict):
                        rows.append(row)
                    else:  # valid JSON but not a record, e.g. a bare number or list
                        report.skip("not_an_object", line)
    else:
        raise MalformedFileError(f"cannot read {path}: use .csv, .tsv, .jsonl or .parquet (optionally .gz)")
    report.rows_read[path.name] += len(rows)
    return rows


def _decoded(lines, path):
    """Iterate ``lines``, turning a decoding failure into an error that says how to fix the file."""
    try:
        yield from lines
    except UnicodeDecodeError as error:
        raise MalformedFileError(
            f"{path} is not UTF-8 text ({error.reason} at byte {error.start}); re-encode it as UTF-8, "
            "e.g. iconv -f latin1 -t utf-8"
        ) from None


def _price(value, report: LoadReport, item_id: str) -> float | None:
    """A usable price, or ``None``: a negative or non-finite price would be printed into item texts."""
    price = _float(value)
    if price is not None and not (math.isfinite(price) and price >= 0):
        report.repair("invalid_price_dropped", f"{item_id}: {value}")
        return None
    return price


def _require(rows: list[dict], columns, path) -> None:
    present = set(rows[0]) if rows else set()
    missing = [c for c in columns if c and c not in present]
    if missing:
        raise MissingColumnsError(
            f"{path} lacks columns {missing} (has {sorted(present)}); pass a ColumnMapping naming your columns"
        )


def _path_of(value, separator: str) -> tuple[str, ...]:
    if value is None or value == "":
        return ()
    if isinstance(value, (list, tuple)):
        return tuple(str(v).strip() for v in value if str(v).strip())
    return tuple(p.strip() for p in str(value).split(separator) if p.strip())


def _float(value) -> float | None:
    try:
        return float(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def load_tabular(items_path, interactions_path, mapping: ColumnMapping | None = None, name: str | None = None) -> Dataset:
    """Load an item table and an interaction table described by ``mapping``.

    Args:
        items_path: the item table.
        interactions_path: the interaction table.
        mapping: column names; the defaults expect ``item_id``, ``title``, ``user_id``, ``timestamp``.
        name: dataset name; defaults to the interactions file stem.

    Raises:
        MissingColumnsError: a mapped column is absent.
        DuplicateIdError: an item id repeats.
        UnknownItemError: an interaction names an unknown item.
    """
    m = mapping or ColumnMapping()
    report = LoadReport()
    item_rows = read_table(items_path, report)
    _require(item_rows, [m.item_id, m.title], items_path)
    check_unique([str(r[m.item_id]) for r in item_rows], "item", str(items_path))
    items = {}
    for row in item_rows:
        categories = _path_of(row.get(m.categories) if m.categories else None, m.category_separator)
        domain = row.get(m.domain) if m.domain else domain_from_path(categories, m.domain_level)
        item_id = str(row[m.item_id])
        items[item_id] = Item(
            item_id, title=" ".join(str(row.get(m.title) or "").split()),
            brand=(row.get(m.brand) or None) if m.brand else None, categories=categories,
            price=_price(row.get(m.price), report, item_id) if m.price else None,
            description=(row.get(m.description) or None) if m.description else None,
            domain=domain or FALLBACK_DOMAIN, attributes={k: row.get(k) for k in m.extra},
        )  # fmt: skip
    rows = read_table(interactions_path, report)
    _require(rows, [m.user_id, m.item_id, m.order, m.label], interactions_path)
    interactions = []
    forms: set[str] = set()
    for position, row in enumerate(rows):
        if row.get(m.user_id) in (None, "") or row.get(m.item_id) in (None, ""):
            report.skip("empty_user_or_item", str(row))
            continue
        order = float(position)
        if m.order:
            parsed = parse_timestamp(row.get(m.order))
            if parsed is None:  # placing it by file position among timed events would be a guess
                report.skip("unreadable_timestamp", str(row))
                continue
            order, form = parsed
            forms.add(form)
        label = _float(row.get(m.label)) if m.label else None
        interactions.append(Interaction(str(row[m.user_id]), str(row[m.item_id]), order, label))
    if m.order and rows and not interactions and report.skipped["unreadable_timestamp"]:
        raise MalformedFileError(
            f"{interactions_path}: column {m.order!r} holds no readable timestamp (e.g. "
            f"{report.examples['unreadable_timestamp'][0]}); use ISO-8601 or epoch seconds, or pass "
            "ColumnMapping(order=None) to keep file order"
        )
    if m.order:
        report.order = f"sorted by column {m.order!r} ({', '.join(sorted(forms)) or 'no values'})"
        report.order_ties = count_ties(interactions)
    stem = name or Path(interactions_path).name.split(".")[0]
    return Dataset(stem, items, interactions, report=report).validate()
