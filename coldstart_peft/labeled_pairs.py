"""Read a labeled-pairs file (JSONL, CSV, TSV or Parquet: user_text, item_text, label[, domain]).

Pairs that share a user context become one :class:`~coldstart_peft.examples.TrainGroup`, so
a file listing a positive and its negatives per context trains with a listwise loss, and a
file of independent pairs trains pointwise.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

from coldstart_peft.data.tables import LABELED_PAIR_COLUMNS, read_rows
from coldstart_peft.errors import DataError, MissingColumnsError
from coldstart_peft.examples import RankingCase, TrainGroup

REQUIRED = LABELED_PAIR_COLUMNS


@dataclass
class LabeledPair:
    """One (user context, item, label) row."""

    user_text: str
    item_text: str
    label: float
    domain: str | None = None


def _rows(path: Path):
    table = read_rows(path, strict=True, what="pairs")
    missing = [c for c in REQUIRED if c not in table.columns]
    if missing and table.format != "jsonl":  # a JSONL row names its own fields; each row is checked below
        raise MissingColumnsError(
            f"{path} lacks column(s) {missing}; it has {table.columns}. "
            f"A pairs file needs a header with {', '.join(REQUIRED)} (domain optional)"
        )
    return zip(table.numbers, table.rows)


def read_pairs(path: str | Path) -> list[LabeledPair]:
    """Read and validate every row of a pairs file.

    Args:
        path: a ``.jsonl``, ``.csv``, ``.tsv`` or ``.parquet`` file (gzip optional), read by the same reader
            as dataset tables (:func:`coldstart_peft.data.tables.read_rows`), strictly: a bad line is an error.

    Raises:
        MissingColumnsError: a required column is absent.
        DataError: empty file, bad encoding, a line that is not a JSON record, a label that is not 0/1, an empty text.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"pairs file {path} does not exist")
    pairs = []
    for number, row in _rows(path):
        missing = [c for c in REQUIRED if row.get(c) in (None, "")]
        if missing:
            raise MissingColumnsError(f"{path}:{number} has no value for {missing}; every row needs {', '.join(REQUIRED)}")
        try:
            label = float(row["label"])
        except (TypeError, ValueError):
            raise DataError(f"{path}:{number}: label {row['label']!r} is not a number; use 1 or 0") from None
        if math.isnan(label) or not 0.0 <= label <= 1.0:
            raise DataError(f"{path}:{number}: label {label} is outside [0, 1]; use 1 (relevant) or 0")
        pairs.append(LabeledPair(str(row["user_text"]), str(row["item_text"]), label, row.get("domain") or None))
    if not pairs:
        raise DataError(f"{path} holds no pairs; it needs rows with {', '.join(REQUIRED)}")
    return pairs


def group_pairs(pairs: list[LabeledPair]) -> list[TrainGroup]:
    """Group pairs by (user context, domain), keeping file order within and across groups."""
    groups: dict[tuple[str, str | None], TrainGroup] = {}
    for pair in pairs:
        key = (pair.user_text, pair.domain)
        if key not in groups:
            groups[key] = TrainGroup(pair.user_text, [pair.item_text], [pair.label], pair.domain)
        else:
            groups[key].item_texts.append(pair.item_text)
            groups[key].labels.append(pair.label)
    return list(groups.values())


def ranking_cases_from_pairs(pairs: list[LabeledPair]) -> list[RankingCase]:
    """Validation cases from labeled pairs: each positive ranked among its user's negatives.

    Users (user text and domain) with no positive or no negative are left out: there is
    nothing to rank for them.
    """
    cases = []
    for group in group_pairs(pairs):
        negatives = [t for t, y in zip(group.item_texts, group.labels) if y <= 0.5]
        for text, label in zip(group.item_texts, group.labels):
            if label > 0.5 and negatives:
                cases.append(RankingCase(group.user_text, [text, *negatives], 0, group.domain))
    return cases


def write_pairs(path: str | Path, groups: list[TrainGroup]) -> Path:
    """Write training groups as a JSONL pairs file that :func:`read_pairs` reads back.

    Example:
        >>> write_pairs("pairs.jsonl", training_groups(split))
    """
    path = Path(path)
    with path.open("w", encoding="utf-8") as handle:
        for group in groups:
            for text, label in zip(group.item_texts, group.labels):
                row = {"user_text": group.user_text, "item_text": text, "label": label}
                if group.domain is not None:
                    row["domain"] = group.domain
                handle.write(json.dumps(row) + "\n")
    return path
