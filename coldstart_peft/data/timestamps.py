"""Read an interactions table's timestamp column, whatever its form, so histories are in time order.

Logs come newest first as often as oldest first, and with ISO-8601 strings as often as epoch
numbers; read in file order, a newest-first log reverses every history without a word. A
value becomes seconds since the epoch: a number (or numeric text) is epoch seconds, or epoch
milliseconds when it is too large to be seconds; text is parsed as ISO-8601 (a naive time is
taken as UTC).
"""

from __future__ import annotations

import math
from datetime import datetime, timezone

MILLISECONDS_FROM = 1e11
"""Epoch values at or above this are milliseconds: 1e11 seconds is the year 5138, 1e11 ms is 1973."""


def parse_timestamp(value) -> tuple[float, str] | None:
    """Seconds since the epoch and the form the value had (``"epoch-s"``, ``"epoch-ms"``, ``"iso-8601"``).

    Returns:
        ``None`` for an empty, non-finite or unreadable value.
    """
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        number = float(value)
    else:
        text = str(value).strip()
        if not text:
            return None
        try:
            number = float(text)
        except ValueError:
            return _iso(text)
    if not math.isfinite(number):
        return None
    return (number / 1000.0, "epoch-ms") if abs(number) >= MILLISECONDS_FROM else (number, "epoch-s")


def count_ties(interactions) -> int:
    """Events that share their user's timestamp with an earlier event of that user (they keep file order)."""
    seen: dict[tuple[str, float], int] = {}
    for event in interactions:
        key = (event.user_id, event.order)
        seen[key] = seen.get(key, 0) + 1
    return sum(count - 1 for count in seen.values())


def _iso(text: str) -> tuple[float, str] | None:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00") if text.endswith("Z") else text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp(), "iso-8601"
