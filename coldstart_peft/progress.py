"""Progress of long phases: a line at the start and end of each, and a bar (total, ETA) inside.

A phase that runs in the command line or a recipe is opened with :func:`phase`; loops deep in
the library (building training groups, counting prior tables) wrap their iterable in
:func:`tracked`, which shows a bar only inside an enabled phase. Library calls made outside
any phase stay silent without every function growing a ``progress`` argument.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import time
from collections.abc import Iterable, Iterator
from typing import TypeVar

from tqdm.auto import tqdm

logger = logging.getLogger("coldstart_peft")
T = TypeVar("T")

_showing: contextvars.ContextVar[bool] = contextvars.ContextVar("coldstart_peft_progress", default=False)


@contextlib.contextmanager
def phase(what: str, enabled: bool = True) -> Iterator[None]:
    """Log ``what`` when it starts and how long it took when it ends; :func:`tracked` loops inside show bars.

    Args:
        what: the phase, e.g. ``"fitting priors on 8,000 training groups"``.
        enabled: ``False`` on processes other than the main one, or when progress is off.

    Example:
        >>> with phase("calibrating the prior weights on 500 validation users"):
        ...     pass
    """
    start = time.perf_counter()
    token = _showing.set(enabled)
    if enabled:
        logger.info("%s ...", what)
    try:
        yield
    finally:
        _showing.reset(token)
    if enabled:
        logger.info("%s: done in %.1fs", what, time.perf_counter() - start)


def tracked(iterable: Iterable[T], desc: str, total: int | None = None, unit: str = "it") -> Iterable[T]:
    """``iterable`` under a tqdm bar with its total and ETA, inside an enabled :func:`phase`; else as it is.

    Args:
        iterable: what the loop walks.
        desc: the bar's label.
        total: its length, when ``len(iterable)`` cannot say (a generator).
        unit: what one step is ("user", "group").
    """
    if not _showing.get():
        return iterable
    return tqdm(iterable, desc=desc, total=total, unit=unit, leave=False)


@contextlib.contextmanager
def paused(bar: tqdm) -> Iterator[None]:
    """Leave the time spent in the block out of ``bar``'s rate and ETA (validation inside a training bar).

    Example:
        >>> with paused(training_bar):
        ...     validate()
    """
    if bar.disable:  # a disabled bar keeps no clock
        yield
        return
    started = time.time()  # tqdm's own clock
    try:
        yield
    finally:
        spent = time.time() - started
        bar.start_t += spent
        bar.last_print_t += spent
