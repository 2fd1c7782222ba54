"""Amazon Reviews 2023 JSONL: the official reviews + ``meta_*`` files, and PixRec's variant.

The official files key items by ``parent_asin``. PixRec's preprocessed files carry no user
ids or ASINs at all: each line is one user's item strings, and the image id is the only
item identifier, so it becomes the item id and users get synthetic ids.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from coldstart_peft.data.files import open_text
from coldstart_peft.data.schema import FALLBACK_DOMAIN, Dataset, Interaction, Item, LoadReport
from coldstart_peft.data.tables import first_line
from coldstart_peft.data.timestamps import count_ties, parse_timestamp

_PIXREC_FIELDS = re.compile(
    r"^Title: (?P<title>.*)\. Category: (?P<category>.*?)\. Brand: (?P<brand>.*?)\. Price: (?P<price>.*?)\. Image: ?$",
    re.S,
)


def _records(path: Path, report: LoadReport):
    """Yield parsed JSON objects, counting lines that do not parse."""
    report.source.append(str(path))
    with open_text(path) as stream:
        for line in stream:
            if not line.strip():
                continue
            report.rows_read[path.name] += 1
            try:
                record = json.loads(line)
            except (json.JSONDecodeError, RecursionError):  # nested deeper than the parser's stack
                report.skip("bad_json", line)
                continue
            if isinstance(record, dict):
                yield record
            else:
                report.skip("not_an_object", line)


def _price(value) -> float | None:
    try:
        return float(str(value).replace("$", "").replace(",", ""))
    except (TypeError, ValueError):
        return None


def load_amazon2023(reviews_path: str | Path, meta_path: str | Path, name: str = "amazon2023", domain_level: int = 0) -> Dataset:
    """Load official Amazon Reviews 2023 files.

    Args:
        reviews_path: ``<Category>.jsonl`` with ``user_id``, ``parent_asin``, ``timestamp``, ``rating``.
        meta_path: ``meta_<Category>.jsonl`` with ``parent_asin``, ``title``, ``store``, ``categories``,
            ``price``, ``main_category``, ``description``.
        name: dataset name.
        domain_level: level of ``categories`` used as the domain; ``main_category`` when absent.

    Returns:
        A validated :class:`Dataset`; reviews of items without metadata are skipped and counted.
    """
    report = LoadReport()
    items: dict[str, Item] = {}
    for record in _records(Path(meta_path), report):
        asin = record.get("parent_asin")
        if not asin:
            report.skip("meta_without_parent_asin", json.dumps(record)[:200])
            continue
        categories = tuple(record.get("categories") or ())
        domain = categories[domain_level] if len(categories) > domain_level else record.get("main_category")
        description = record.get("description") or None
        items[asin] = Item(
            item_id=asin,
            title=" ".join(str(record.get("title") or "").split()),
            brand=record.get("store") or None,
            categories=categories,
            price=_price(record.get("price")),
            description=" ".join(description) if isinstance(description, list) else description,
            domain=domain or FALLBACK_DOMAIN,
        )
    interactions = []
    for record in _records(Path(reviews_path), report):
        missing = [k for k in ("user_id", "parent_asin") if not record.get(k)]
        if missing:
            report.skip("review_missing_" + "_".join(missing), json.dumps(record)[:200])
        elif record["parent_asin"] not in items:
            report.skip("review_of_item_without_metadata", record["parent_asin"])
        elif (moment := parse_timestamp(record.get("timestamp") or 0)) is None:
            report.skip("unreadable_timestamp", json.dumps(record)[:200])
        else:
            label = _float(record.get("rating"))
            interactions.append(Interaction(record["user_id"], record["parent_asin"], moment[0], label))
    report.order, report.order_ties = "sorted by column 'timestamp'", count_ties(interactions)
    return Dataset(name, items, interactions, report=report).validate()


def _float(value) -> float | None:
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def parse_pixrec_item(text: str) -> dict:
    """Split a PixRec item string ``"Title: .. Category: .. Brand: .. Price: .. Image: "`` into fields.

    ``"Unknown"`` brand or price become ``None``; a string that does not match keeps it all as the title.
    """
    match = _PIXREC_FIELDS.match(text.strip())
    if not match:
        return {"title": text.strip(), "category": None, "brand": None, "price": None}
    fields = match.groupdict()
    return {
        "title": fields["title"].strip(),
        "category": fields["category"].strip() or None,
        "brand": None if fields["brand"] in ("", "Unknown") else fields["brand"],
        "price": None if fields["price"] in ("", "Unknown") else _price(fields["price"]),
    }


def load_pixrec(path: str | Path, name: str | None = None) -> Dataset:
    """Load a PixRec JSONL file (``user_history``, ``user_history_images``, ``target_item``, ``target_item_image``).

    Args:
        path: e.g. ``Magazine_Subscriptions.jsonl.gz``.
        name: dataset name; defaults to the file stem.

    Returns:
        A :class:`Dataset` whose item ids are image ids and user ids are ``"u<line>"``;
        the target is the last interaction of each user.

    Raises:
        EmptyDatasetError: no line is a PixRec record (the message says when the file is a RecBole one).
    """
    path = Path(path)
    report = LoadReport()
    items: dict[str, Item] = {}
    interactions = []
    for line_no, record in enumerate(_records(path, report)):
        texts = list(record.get("user_history") or []) + [record.get("target_item")]
        images = list(record.get("user_history_images") or []) + [record.get("target_item_image")]
        if len(texts) != len(images) or not all(texts) or not all(images):
            report.skip("history_and_images_disagree", json.dumps(record)[:200])
            continue
        user = f"u{line_no}"
        for position, (text, image) in enumerate(zip(texts, images)):
            item_id = Path(image).stem
            fields = parse_pixrec_item(text)
            if item_id not in items:
                items[item_id] = Item(
                    item_id, title=fields["title"], brand=fields["brand"], price=fields["price"],
                    categories=(fields["category"],) if fields["category"] else (),
                    domain=fields["category"] or FALLBACK_DOMAIN,
                )  # fmt: skip
            elif items[item_id].title != fields["title"]:
                report.repair("same_image_different_text", item_id)
            interactions.append(Interaction(user, item_id, float(position)))
    stem = path.name.split(".")[0]
    hint = "a PixRec file holds one JSON record per line with user_history(_images) and target_item(_image)"
    if ":token" in (line := first_line(path)) or ":float" in line:
        hint = (f"{path.name} starts with a RecBole atomic header ({line!r}): name it NAME.inter beside "
                "NAME.item and pass it, or its folder, as --dataset")  # fmt: skip
    return Dataset(name or stem.lower(), items, interactions, report=report).check_not_empty(hint).validate()
