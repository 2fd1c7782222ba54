"""One line at the start and end of each long phase, so a silent minute is never a mystery."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator

logger = logging.getLogger("coldstart_peft")


@contextlib.contextmanager
def phase(what: str, enabled: bool = True) -> Iterator[None]:
    """Log ``what`` when it starts and how long it took when it ends.

    Args:
        what: the phase, e.g. ``"fitting priors on 8,000 training groups"``.
        enabled: ``False`` on processes other than the main one, or when progress is off.

    Example:
        >>> with phase("calibrating the prior weights on 500 validation users"):
        ...     pass
    """
    start = time.perf_counter()
    if enabled:
        logger.info("%s ...", what)
    yield
    if enabled:
        logger.info("%s: done in %.1fs", what, time.perf_counter() - start)
