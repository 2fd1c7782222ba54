"""The tables every loader produces: items, interactions, user attributes, and a load report.

Loaders differ in file formats but all end in one :class:`Dataset`, validated the same
way, so splits, text serialization and baselines never see a format detail.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter, defaultdict
from dataclasses import dataclass, field

from coldstart_peft.errors import DuplicateIdError, EmptyDatasetError, EmptyHistoryError, UnknownItemError

FALLBACK_DOMAIN = "Other"
"""Domain given to items whose category path does not name one (documented, never guessed)."""


@dataclass
class Item:
    """One catalog item.

    Args:
        item_id: the item's id as a string (ASIN, movie id...).
        title: display title; empty when the source has none.
        brand: brand or maker, if known.
        categories: the category path from broad to narrow, e.g. ``("Beauty", "Makeup", "Face")``.
        price: price in the source's currency, if known.
        description: free-text description, if known.
        domain: the domain used for per-domain adapters and reporting.
        attributes: any other source fields (sales rank, genres, release date...).
    """

    item_id: str
    title: str = ""
    brand: str | None = None
    categories: tuple[str, ...] = ()
    price: float | None = None
    description: str | None = None
    domain: str = FALLBACK_DOMAIN
    attributes: dict = field(default_factory=dict)


@dataclass
class Interaction:
    """One user-item event.

    Args:
        user_id: the user's id.
        item_id: the item's id; must be in the item table.
        order: position or timestamp; events of a user sort by it (stable for ties).
        label: optional rating or 0/1 label.
    """

    user_id: str
    item_id: str
    order: float = 0.0
    label: float | None = None


@dataclass
class LoadReport:
    """What a loader read, repaired and skipped, so nothing is dropped silently.

    Args:
        source: the files read.
        rows_read: physical lines (or records) read, per source file name.
        repaired: count per kind of repair (``"multiline_title"``, ``"embedded_tab"``...).
        skipped: count per reason a record was dropped.
        examples: up to a few offending records per reason, for debugging.
        order: how each user's events were put in time order (the column and the forms of its values).
        order_ties: events that share their user's timestamp with an earlier one (kept in file order).
        unused: file name -> columns no field maps (each also raised as a ``DataWarning``).
    """

    source: list[str] = field(default_factory=list)
    rows_read: Counter = field(default_factory=Counter)
    repaired: Counter = field(default_factory=Counter)
    skipped: Counter = field(default_factory=Counter)
    examples: dict[str, list[str]] = field(default_factory=dict)
    order: str = "file order"
    order_ties: int = 0
    unused: dict[str, list[str]] = field(default_factory=dict)

    def skip(self, reason: str, record: str = "") -> None:
        """Count one dropped record under ``reason`` and keep a short example."""
        self.skipped[reason] += 1
        self._example(reason, record)

    def repair(self, kind: str, record: str = "") -> None:
        """Count one record that was read after fixing it (kept, not dropped)."""
        self.repaired[kind] += 1
        self._example(kind, record)

    def _example(self, key: str, record: str) -> None:
        examples = self.examples.setdefault(key, [])
        if record and len(examples) < 3:
            examples.append(record[:200])

    def summary(self) -> str:
        """One line for logs: rows read, repairs and skips by reason."""
        repaired = ", ".join(f"{k}={v}" for k, v in sorted(self.repaired.items())) or "none"
        skipped = ", ".join(f"{k}={v}" for k, v in sorted(self.skipped.items())) or "none"
        read = ", ".join(f"{k}={v}" for k, v in self.rows_read.items()) or "nothing"
        ties = f", {self.order_ties} ties kept in file order" if self.order_ties else ""
        unused = "".join(f"; unused in {name}: {', '.join(columns)}" for name, columns in self.unused.items())
        return f"read {read}; repaired: {repaired}; skipped: {skipped}; order: {self.order}{ties}{unused}"


@dataclass
class Dataset:
    """A catalog, its interaction log and optional user attributes.

    Args:
        name: short name (``"beauty"``) or the path it came from.
        items: item id -> :class:`Item`.
        interactions: the event log; use :meth:`sequences` for per-user chronological ids.
        user_attributes: user id -> attributes (MovieLens age, gender, occupation...).
        report: what the loader read, repaired and skipped.
    """

    name: str
    items: dict[str, Item]
    interactions: list[Interaction]
    user_attributes: dict[str, dict] = field(default_factory=dict)
    report: LoadReport = field(default_factory=LoadReport)
    _sequences: dict[str, list[str]] | None = field(default=None, repr=False, compare=False)

    def sequences(self) -> dict[str, list[str]]:
        """Return user id -> item ids in chronological order (computed once, then cached)."""
        if self._sequences is None:
            by_user: dict[str, list[tuple[float, int, str]]] = defaultdict(list)
            for position, event in enumerate(self.interactions):
                by_user[event.user_id].append((event.order, position, event.item_id))
            self._sequences = {u: [i for _, _, i in sorted(events)] for u, events in by_user.items()}
        return self._sequences

    @property
    def domains(self) -> list[str]:
        """Sorted distinct item domains."""
        return sorted({item.domain for item in self.items.values()})

    def validate(self, min_history: int = 1) -> Dataset:
        """Check ids and histories; return ``self`` so loaders can chain it.

        Raises:
            UnknownItemError: an interaction names an item missing from the item table.
            EmptyHistoryError: a user with attributes has fewer than ``min_history`` events.
        """
        unknown = Counter(e.item_id for e in self.interactions if e.item_id not in self.items)
        if unknown:
            shown = ", ".join(repr(i) for i, _ in unknown.most_common(5))
            raise UnknownItemError(
                f"{sum(unknown.values())} interactions in {self.name!r} refer to {len(unknown)} item ids "
                f"missing from the item table (e.g. {shown}); add them to the item file or filter the log first"
            )
        sequences = self.sequences()
        short = [u for u in self.user_attributes if len(sequences.get(u, ())) < min_history]
        if short:
            raise EmptyHistoryError(
                f"{len(short)} users of {self.name!r} have fewer than {min_history} interactions "
                f"(e.g. {short[0]!r}); drop them from the user table or lower min_history"
            )
        return self

    def check_not_empty(self, hint: str = "") -> Dataset:
        """Refuse a dataset with no items or no interactions; return ``self`` so loaders can chain it.

        Args:
            hint: what to try instead, appended to the message (which option reads such files).

        Raises:
            EmptyDatasetError: the item table or the interaction log is empty; the message says what was
                read and skipped.
        """
        empty = [what for what, rows in (("items", self.items), ("interactions", self.interactions)) if not rows]
        if empty:
            raise EmptyDatasetError(
                f"dataset {self.name!r} loaded with no {' and no '.join(empty)} ({self.report.summary()})"
                + (f"; {hint}" if hint else "")
            )
        return self

    def fingerprint(self) -> str:
        """A 16-hex-digit digest of item ids and sequences, to tie saved splits to their data."""
        digest = hashlib.sha256()
        digest.update(json.dumps(sorted(self.items)).encode())
        for user in sorted(self.sequences()):
            digest.update(json.dumps([user, self.sequences()[user]]).encode())
        return digest.hexdigest()[:16]


def check_unique(ids, what: str, source: str) -> None:
    """Raise :class:`DuplicateIdError` when ``ids`` repeats a value.

    Args:
        ids: the ids, in file order.
        what: what they identify, for the message (``"item"``).
        source: the file they came from.
    """
    counts = Counter(ids)
    repeated = [i for i, n in counts.items() if n > 1]
    if repeated:
        raise DuplicateIdError(
            f"{len(repeated)} {what} ids appear more than once in {source} (e.g. {repeated[0]!r}); "
            f"deduplicate the file or map the rows to distinct ids"
        )
