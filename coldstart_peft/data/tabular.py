"""An item table and an interaction table under any names and formats, read through a column mapping.

The tables come from the one reader (:mod:`coldstart_peft.data.tables`), so CSV, TSV, JSONL,
Parquet and RecBole atomic files all build the same :class:`Dataset`. Rows with an empty
required value are skipped and counted; a column that maps to nothing is warned about.
"""

from __future__ import annotations

import html
import math
from pathlib import Path

from coldstart_peft.data.amazon2014 import domain_from_path, parse_category_path
from coldstart_peft.data.columns import ColumnMapping, warn_about_file, warn_unused
from coldstart_peft.data.schema import FALLBACK_DOMAIN, Dataset, Interaction, Item, LoadReport, check_unique
from coldstart_peft.data.tables import LABELED_PAIR_COLUMNS, Table, read_rows, read_table
from coldstart_peft.data.timestamps import count_ties, parse_timestamp
from coldstart_peft.errors import MalformedFileError, MissingColumnsError, WrongFileKindError

__all__ = ["ColumnMapping", "build_dataset", "load_tabular", "read_table"]

LIKELY_NAMES = {
    "item_id": ("item", "itemid", "id", "asin", "parent_asin", "sku", "product_id", "movie_id"),
    "user_id": ("user", "userid", "reviewer_id", "reviewerID", "customer_id"),
    "order": ("time", "ts", "date", "datetime", "unix_time", "event_time"),
    "title": ("name", "product_name", "item_name", "movie_title"),
}
"""Field -> column names it often has, suggested when the mapped column is missing (never used unasked)."""


def load_tabular(items_path, interactions_path, mapping: ColumnMapping | None = None, name: str | None = None) -> Dataset:
    """Load an item table and an interaction table described by ``mapping``.

    Args:
        items_path: the item table (``.csv``, ``.tsv``, ``.jsonl``, ``.parquet``, optionally gzipped).
        interactions_path: the interaction table, in any of those formats.
        mapping: column names; the defaults expect ``item_id``, ``title``, ``user_id``, ``timestamp`` and
            use ``brand``, ``category``/``categories``, ``price``, ``description``, ``domain`` and
            ``rating``/``label`` columns when present.
        name: dataset name; defaults to the interactions file stem.

    Raises:
        MissingColumnsError: a mapped column is absent.
        DuplicateIdError: an item id repeats.
        UnknownItemError: an interaction names an unknown item.
        EmptyDatasetError: no item or no interaction was read.
        WrongFileKindError: a table is a labeled-pairs file.

    Example:
        >>> ds = load_tabular("products.parquet", "clicks.csv", ColumnMapping(title="product_name"))
    """
    report = LoadReport()
    items = read_rows(items_path, report)
    interactions = read_rows(interactions_path, report)
    return build_dataset(items, interactions, mapping, name or Path(interactions_path).name.split(".")[0], report)


def build_dataset(
    items: Table, interactions: Table, mapping: ColumnMapping | None, name: str, report: LoadReport,
    users: Table | None = None, keep_unknown_items: bool = False,
) -> Dataset:  # fmt: skip
    """Build a validated :class:`Dataset` from tables already read.

    Args:
        items: the item table.
        interactions: the interaction table.
        mapping: column names (see :class:`ColumnMapping`); unset optional fields are detected.
        name: dataset name.
        report: the report the tables were read into.
        users: optional user table; its columns other than the user id become user attributes.
        keep_unknown_items: keep interactions with items missing from ``items`` as items without
            text (counted as ``item_without_metadata``), as RecBole does, instead of refusing them.
    """
    for table in (items, interactions):
        _refuse_pairs(table)
    m = (mapping or ColumnMapping()).detected(items.columns, interactions.columns)
    _require(items, [("item_id", m.item_id), ("title", m.title), *(("extra", c) for c in m.extra)])
    _require(interactions, [("user_id", m.user_id), ("item_id", m.item_id), ("order", m.order), ("label", m.label)])
    warn_unused(items.columns, m, items.path, "items", report)
    warn_unused(interactions.columns, m, interactions.path, "interactions", report)
    catalog = _items(items, m, report)
    events = _interactions(interactions, m, report)
    unknown = [e.item_id for e in events if e.item_id not in catalog]
    if keep_unknown_items and unknown:
        for item_id in unknown:
            report.repair("item_without_metadata", item_id)
            catalog.setdefault(item_id, Item(item_id))
        warn_about_file(
            f"{len(unknown)} interactions name items missing from {items.path.name}; they are kept as items "
            "without a title (add the items to the item file to give them text)", interactions.path,
        )  # fmt: skip
    attributes = _user_attributes(users, m, {e.user_id for e in events}, report) if users else {}
    dataset = Dataset(name, catalog, events, user_attributes=attributes, report=report)
    return dataset.check_not_empty("check that the files hold rows below their header").validate()


def _items(table: Table, m: ColumnMapping, report: LoadReport) -> dict[str, Item]:
    rows = []
    for row in table.rows:
        if row.get(m.item_id) in (None, ""):
            report.skip("empty_item_id", str(row))
        else:
            rows.append(row)
    check_unique([str(r[m.item_id]) for r in rows], "item", str(table.path))
    # RecBole separates the tokens of a token_seq with spaces (its seq_separator), not ">".
    separator = " " if table.types.get(m.categories) == "token_seq" and m.category_separator == ">" else m.category_separator
    # RecBole's Amazon item files keep the HTML entities of the crawl ("Crabtree &amp; Evelyn").
    text = html.unescape if table.format == "atomic" else str
    items = {}
    for row in rows:
        categories = _path_of(row.get(m.categories) if m.categories else None, separator)
        domain = row.get(m.domain) if m.domain else domain_from_path(categories, m.domain_level)
        item_id = str(row[m.item_id])
        brand = row.get(m.brand) if m.brand else None
        items[item_id] = Item(
            item_id, title=" ".join(text(str(row.get(m.title) or "")).split()),
            brand=(text(brand).strip() or None) if isinstance(brand, str) else (brand or None), categories=categories,
            price=_price(row.get(m.price), report, item_id) if m.price else None,
            description=(row.get(m.description) or None) if m.description else None,
            domain=str(domain or FALLBACK_DOMAIN), attributes={k: row.get(k) for k in m.extra},
        )  # fmt: skip
    return items


def _interactions(table: Table, m: ColumnMapping, report: LoadReport) -> list[Interaction]:
    interactions = []
    forms: set[str] = set()
    for position, row in enumerate(table.rows):
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
    if m.order and table.rows and not interactions and report.skipped["unreadable_timestamp"]:
        raise MalformedFileError(
            f"{table.path}: column {m.order!r} holds no readable timestamp (e.g. "
            f"{report.examples['unreadable_timestamp'][0]}); use ISO-8601 or epoch seconds, or keep file order "
            "with --column order= (ColumnMapping(order=None) in Python)"
        )
    if m.order:
        report.order = f"sorted by column {m.order!r} ({', '.join(sorted(forms)) or 'no values'})"
        report.order_ties = count_ties(interactions)
    return interactions


def _user_attributes(table: Table, m: ColumnMapping, active: set[str], report: LoadReport) -> dict[str, dict]:
    _require(table, [("user_id", m.user_id)])
    attributes = {}
    for row in table.rows:
        user = str(row.get(m.user_id) or "")
        if user not in active:  # a user with features but no event has nothing to split on
            report.skip("user_without_interactions", user)
            continue
        attributes[user] = {k: v for k, v in row.items() if k != m.user_id and v not in (None, "")}
    return attributes


def _refuse_pairs(table: Table) -> None:
    if set(LABELED_PAIR_COLUMNS) <= set(table.columns):
        raise WrongFileKindError(
            f"{table.path} is a labeled-pairs file (columns {', '.join(LABELED_PAIR_COLUMNS)}), not a dataset table; "
            "train on it with `coldstart-peft train --pairs FILE`, evaluate with `evaluate --adapter DIR --pairs FILE`"
        )


def _require(table: Table, fields) -> None:
    present = set(table.columns)
    missing = [(f, c) for f, c in fields if c and c not in present]
    if not missing:
        return
    hints = []
    for field, column in missing:
        likely = next((c for c in LIKELY_NAMES.get(field, ()) if c in present), None)
        if likely:
            hints.append(f"--column {field}={likely}")
        elif field == "order":
            hints.append("--column order=COLUMN, or --column order= to keep file order")
    advice = f"e.g. {'; '.join(hints)}" if hints else "e.g. --column title=product_name"
    raise MissingColumnsError(
        f"{table.path} lacks columns {[c for _, c in missing]} (has {sorted(present)}); name yours with "
        f"--column FIELD=COLUMN ({advice}) or pass a ColumnMapping in Python"
    )


def _path_of(value, separator: str) -> tuple[str, ...]:
    if value is None or value == "":
        return ()
    if isinstance(value, (list, tuple)):
        return tuple(str(v).strip() for v in value if str(v).strip())
    text = str(value).strip()
    if text[:1] in ("'", '"'):  # a quoted list such as RecBole's Amazon paths: 'Beauty', 'Makeup'
        return parse_category_path(text)
    return tuple(p.strip() for p in text.split(separator) if p.strip())


def _price(value, report: LoadReport, item_id: str) -> float | None:
    """A usable price, or ``None``: a negative or non-finite price would be printed into item texts."""
    price = _float(value)
    if price is not None and not (math.isfinite(price) and price >= 0):
        report.repair("invalid_price_dropped", f"{item_id}: {value}")
        return None
    return price


def _float(value) -> float | None:
    try:
        return float(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None
