"""Amazon 2014 (P5 ``sequential_data.txt`` + ``datamaps.json``) joined with a RecBole ``.item`` file.

The RecBole metadata is tab-separated with double-quote quoting. Read line by line it looks
broken (a title spanning two lines, rows with eight fields), but every such row is a quoted
field holding a newline or a tab, so the quote-aware table reader (:mod:`coldstart_peft.data.tables`)
recovers all of them; the report counts each repair, and a row still too wide is skipped and counted.
"""

from __future__ import annotations

import ast
import html
import json
from pathlib import Path

from coldstart_peft.data.files import open_text
from coldstart_peft.data.schema import FALLBACK_DOMAIN, Dataset, Interaction, Item, LoadReport, check_unique
from coldstart_peft.data.tables import read_rows
from coldstart_peft.errors import MissingColumnsError

RECBOLE_ITEM_COLUMNS = ("item_id", "title", "categories")
"""Columns a RecBole ``.item`` file must have; ``brand``, ``price``, ``sales_*`` are optional."""


def parse_category_path(text: str) -> tuple[str, ...]:
    """Parse a RecBole ``token_seq`` category cell such as ``'Beauty', 'Makeup', 'Face'``.

    Args:
        text: the cell, a comma-separated list of Python string literals.

    Returns:
        The path from broad to narrow; ``()`` for an empty cell.
    """
    text = text.strip()
    if not text:
        return ()
    try:
        parsed = ast.literal_eval(f"[{text}]")
        return tuple(str(p).strip() for p in parsed if str(p).strip())
    except (ValueError, SyntaxError):
        # A stray quote inside a name breaks literal_eval; a plain split is close enough.
        return tuple(p.strip().strip("'\"") for p in text.split(",") if p.strip().strip("'\""))


def domain_from_path(categories: tuple[str, ...], level: int = 1) -> str:
    """Return the category at ``level`` (0 = root) or :data:`FALLBACK_DOMAIN` when the path is shorter.

    Beauty's second level (``level=1``) gives the six domains Skin Care, Hair Care, Makeup,
    Tools & Accessories, Bath & Body and Fragrance.
    """
    return categories[level] if len(categories) > level else FALLBACK_DOMAIN


def _float_or_none(text: str) -> float | None:
    try:
        return float(text) if text.strip() else None
    except ValueError:
        return None


def read_recbole_items(path: str | Path, report: LoadReport, domain_level: int = 1) -> dict[str, Item]:
    """Read a RecBole atomic ``.item`` file into items, counting repaired and skipped rows.

    Args:
        path: the ``.item`` file (gzip optional).
        report: receives the counts (``multiline_field``, ``embedded_tab``, ``wrong_field_count``...).
        domain_level: which level of the category path names the domain.

    Raises:
        MissingColumnsError: the header lacks ``item_id``, ``title`` or ``categories``.
    """
    table = read_rows(path, report, format="atomic")
    missing = [c for c in RECBOLE_ITEM_COLUMNS if c not in table.columns]
    if missing:
        raise MissingColumnsError(f"{path} lacks columns {missing} (has {table.columns}); is this a RecBole .item file?")
    items: dict[str, Item] = {}
    for row in table.rows:
        item_id = row["item_id"].strip()
        if item_id in items:
            report.skip("duplicate_item_id", item_id)
            continue
        categories = parse_category_path(row["categories"])
        extra = {k: v for k, v in row.items() if k.startswith("sales_") and v.strip()}
        items[item_id] = Item(
            item_id=item_id,
            title=" ".join(html.unescape(row["title"]).split()),
            brand=(html.unescape(row["brand"]).strip() or None) if "brand" in row else None,
            categories=categories,
            price=_float_or_none(row["price"]) if "price" in row else None,
            domain=domain_from_path(categories, domain_level),
            attributes=extra,
        )
    return items


def load_amazon2014(
    sequential_path: str | Path,
    datamaps_path: str | Path,
    item_path: str | Path,
    name: str = "amazon2014",
    domain_level: int = 1,
) -> Dataset:
    """Load P5-style interactions and join them with RecBole item metadata on the ASIN.

    Args:
        sequential_path: ``sequential_data.txt`` (one line per user: ``user item item ...``, chronological).
        datamaps_path: ``datamaps.json`` with ``id2user`` and ``id2item``.
        item_path: the RecBole ``.item`` file keyed by ASIN.
        name: dataset name for messages and reports.
        domain_level: category-path level used as the domain.

    Returns:
        A validated :class:`Dataset` keyed by ASIN and reviewer id.

    Example:
        >>> ds = load_amazon2014("p5/sequential_data.txt", "p5/datamaps.json", "recbole/Amazon_Beauty.item")
    """
    report = LoadReport()
    items = read_recbole_items(item_path, report, domain_level)
    with open_text(datamaps_path) as stream:
        maps = json.load(stream)
    missing = [k for k in ("id2user", "id2item") if k not in maps]
    if missing:
        raise MissingColumnsError(f"{datamaps_path} lacks keys {missing}; expected a P5 datamaps.json")
    id2user, id2item = maps["id2user"], maps["id2item"]
    report.source.append(str(sequential_path))
    interactions: list[Interaction] = []
    users: list[str] = []
    with open_text(sequential_path) as stream:
        for line in stream:
            report.rows_read[Path(sequential_path).name] += 1
            fields = line.split()
            if len(fields) < 2:
                report.skip("empty_history", line.strip())
                continue
            if fields[0] not in id2user or any(f not in id2item for f in fields[1:]):
                report.skip("unmapped_id", line.strip())
                continue
            user = id2user[fields[0]]
            users.append(user)
            for position, item_index in enumerate(fields[1:]):
                asin = id2item[item_index]
                if asin not in items:
                    # Keep the interaction: an item without metadata is still a real event.
                    report.repair("item_without_metadata", asin)
                    items[asin] = Item(item_id=asin, domain=FALLBACK_DOMAIN)
                interactions.append(Interaction(user, asin, float(position)))
    check_unique(users, "user", str(sequential_path))
    return Dataset(name=name, items=items, interactions=interactions, report=report).validate()
