"""Read a labeled-pairs file (JSONL or CSV: user_text, item_text, label[, domain]).

Pairs that share a user context become one :class:`~coldstart_peft.examples.TrainGroup`, so
a file listing a positive and its negatives per context trains with a listwise loss, and a
file of independent pairs trains pointwise.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import math
from dataclasses import dataclass
from pathlib import Path

from coldstart_peft.errors import DataError, MissingColumnsError
from coldstart_peft.examples import RankingCase, TrainGroup

REQUIRED = ("user_text", "item_text", "label")


@dataclass
class LabeledPair:
    """One (user context, item, label) row."""

    user_text: str
    item_text: str
    label: float
    domain: str | None = None


def _open_text(path: Path):
    raw = gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")
    return io.TextIOWrapper(raw, encoding="utf-8", errors="strict", newline="")


def _rows(path: Path):
    name = path.name[:-3] if path.name.endswith(".gz") else path.name
    with _open_text(path) as handle:
        if name.endswith((".jsonl", ".json")):
            for number, line in enumerate(handle, start=1):
                if line.strip():
                    try:
                        row = json.loads(line)
                    except (json.JSONDecodeError, RecursionError) as exc:
                        reason = getattr(exc, "msg", "nested too deeply")
                        raise DataError(f"{path}:{number} is not valid JSON ({reason}); fix or remove the line") from None
                    if not isinstance(row, dict):
                        raise DataError(f"{path}:{number} must be a JSON object with {', '.join(REQUIRED)}")
                    yield number, row
        elif name.endswith((".csv", ".tsv")):
            reader = csv.DictReader(handle, delimiter="\t" if name.endswith(".tsv") else ",")
            missing = [c for c in REQUIRED if c not in (reader.fieldnames or [])]
            if missing:
                raise MissingColumnsError(
                    f"{path} lacks column(s) {missing}; it has {reader.fieldnames}. "
                    f"A pairs file needs a header with {', '.join(REQUIRED)} (domain optional)"
                )
            for number, row in enumerate(reader, start=2):
                yield number, row
        else:
            raise DataError(f"{path}: unknown pairs file type; use .jsonl, .csv or .tsv (optionally .gz)")


def read_pairs(path: str | Path) -> list[LabeledPair]:
    """Read and validate every row of a pairs file.

    Raises:
        MissingColumnsError: a required column is absent.
        DataError: empty file, bad encoding, a label that is not 0/1, an empty text.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"pairs file {path} does not exist")
    pairs = []
    try:
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
    except UnicodeDecodeError as exc:
        raise DataError(f"{path} is not UTF-8 text ({exc.reason} at byte {exc.start}); re-encode it as UTF-8") from exc
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
