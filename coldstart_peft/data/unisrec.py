"""Amazon 2018 in UniSRec's downstream format: ``.{train,valid,test}.inter`` + ``.text``.

Each ``.inter`` row is ``user  history  target`` for one step of a leave-one-out split,
with histories cut to the last 50 items. The full sequence is rebuilt by chaining: start
from the one-item history and repeatedly look up the row whose history is the current
sequence's tail. That recovers every interaction, even past the 50-item cut.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from pathlib import Path

from coldstart_peft.data.files import open_text, resolve_file
from coldstart_peft.data.schema import FALLBACK_DOMAIN, Dataset, Interaction, Item, LoadReport
from coldstart_peft.errors import MalformedFileError

SCIENTIFIC_DOMAINS = (
    "Abrasive & Finishing Products", "Additive Manufacturing Products", "Commercial Door Products",
    "Cutting Tools", "Fasteners", "Filtration", "Food Service Equipment & Supplies",
    "Hydraulics, Pneumatics & Plumbing", "Industrial Electrical", "Industrial Hardware",
    "Industrial Power & Hand Tools", "Janitorial & Sanitation Supplies", "Lab & Scientific Products",
    "Material Handling Products", "Occupational Health & Safety Products", "Packaging & Shipping Supplies",
    "Power Transmission Products", "Professional Dental Supplies", "Professional Medical Supplies",
    "Raw Materials", "Retail Store Fixtures & Equipment", "Science Education", "Tapes, Adhesives & Sealants",
    "Test, Measure & Inspect",
)  # fmt: skip
"""Second-level Industrial & Scientific categories. UniSRec joins the path with spaces, so
levels cannot be split on a separator; the domain is the known name the path starts with."""

SPLITS = ("train", "valid", "test")


def parse_unisrec_text(text: str, root: str = "", domains=()) -> tuple[str, tuple[str, ...], str | None, str]:
    """Split a UniSRec item string ``"title. category path. brand. "`` into its parts.

    Args:
        text: the item string.
        root: the top-level category the path starts with (``"Industrial & Scientific"``).
        domains: known second-level names; the first one the path starts with is the domain.

    Returns:
        ``(title, categories, brand, domain)``; the domain is :data:`FALLBACK_DOMAIN` when no known name matches.
    """
    body = text.strip()
    body = body[:-1] if body.endswith(".") else body
    parts = body.rsplit(". ", 2)
    if len(parts) < 3:
        return body, (), None, FALLBACK_DOMAIN
    title, path, brand = (p.strip() for p in parts)
    path = path.strip(". ")
    domain = FALLBACK_DOMAIN
    categories: tuple[str, ...] = (path,) if path else ()
    rest = path[len(root) :].strip() if root and path.startswith(root) else path
    for name in domains:
        if rest.startswith(name):
            domain = name
            tail = rest[len(name) :].strip()
            categories = tuple(p for p in (root, name, tail) if p)
            break
    return title, categories, brand or None, domain


def _read_index(path: Path, report: LoadReport) -> dict[str, str]:
    """Read ``key \\t index`` lines into index -> key."""
    out: dict[str, str] = {}
    with open_text(path) as stream:
        for line in stream:
            report.rows_read[path.name] += 1
            fields = line.rstrip("\r\n").split("\t")
            if len(fields) != 2:
                report.skip("bad_index_row", line)
                continue
            out[fields[1]] = fields[0]
    return out


def _chain(rows: list[tuple[tuple[str, ...], str]], window: int, report: LoadReport) -> list[str]:
    """Rebuild one user's sequence from its (history, target) rows."""
    by_history = {history: target for history, target in rows}
    sequence = list(min(rows, key=lambda r: len(r[0]))[0])
    while True:
        target = by_history.pop(tuple(sequence[-window:]), None)
        if target is None:
            break
        sequence.append(target)
    for _ in by_history:
        report.skip("unchained_row")
    return sequence


def load_unisrec(folder: str | Path, name: str | None = None, root: str = "", domains=(), window: int = 50) -> Dataset:
    """Load a UniSRec downstream dataset folder such as ``Scientific/``.

    Args:
        folder: holds ``<Name>.{train,valid,test}.inter``, ``<Name>.text``, ``<Name>.item2index``
            and ``<Name>.user2index`` (each optionally gzipped).
        name: the file stem; defaults to the folder name.
        root: top-level category of the item paths, stripped before matching ``domains``.
        domains: known second-level categories (see :data:`SCIENTIFIC_DOMAINS`).
        window: history truncation length used by the preprocessing.

    Returns:
        A validated :class:`Dataset` keyed by ASIN and reviewer id.
    """
    folder = Path(folder)
    stem = name or folder.name
    report = LoadReport()
    index_to_asin = _read_index(resolve_file(folder / f"{stem}.item2index"), report)
    index_to_user = _read_index(resolve_file(folder / f"{stem}.user2index"), report)
    items: dict[str, Item] = {}
    text_path = resolve_file(folder / f"{stem}.text")
    report.source.append(str(text_path))
    with open_text(text_path) as stream:
        next(stream)
        for line in stream:
            report.rows_read[text_path.name] += 1
            fields = line.rstrip("\r\n").split("\t", 1)
            if len(fields) != 2:
                report.skip("bad_text_row", line)
                continue
            title, categories, brand, domain = parse_unisrec_text(fields[1], root, domains)
            items[fields[0]] = Item(fields[0], title=title, brand=brand, categories=categories, domain=domain)
    rows: dict[str, list[tuple[tuple[str, ...], str]]] = defaultdict(list)
    for split in SPLITS:
        path = resolve_file(folder / f"{stem}.{split}.inter")
        report.source.append(str(path))
        with open_text(path) as stream:
            reader = csv.reader(stream, delimiter="\t", quoting=csv.QUOTE_NONE)
            header = [h.split(":")[0] for h in next(reader)]
            if header[:3] != ["user_id", "item_id_list", "item_id"]:
                raise MalformedFileError(f"{path} header is {header}; expected user_id, item_id_list, item_id")
            for row in reader:
                report.rows_read[path.name] += 1
                if len(row) != 3 or not row[1].strip():
                    report.skip("bad_inter_row", "\t".join(row))
                    continue
                rows[row[0]].append((tuple(row[1].split()), row[2]))
    interactions = []
    for user_index, user_rows in rows.items():
        user = index_to_user.get(user_index, user_index)
        for position, item_index in enumerate(_chain(user_rows, window, report)):
            asin = index_to_asin.get(item_index)
            if asin is None:
                report.skip("unmapped_item_index", item_index)
                continue
            interactions.append(Interaction(user, asin, float(position)))
    return Dataset(name=stem.lower(), items=items, interactions=interactions, report=report).validate()
