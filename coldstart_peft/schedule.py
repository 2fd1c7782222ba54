"""The learning-rate schedule: a pure function of training progress.

The engine calls :func:`lr_factor` once per optimizer step and sets the same factor on every
parameter group, so the rate cannot drift between groups (a ``LambdaLR`` whose lambda counts
its own calls decays once per group) nor between processes (a prepared scheduler steps once
per process). Progress is the larger of the share of planned steps taken and the share of the
time budget spent, so a run cut short by its budget still warms up and decays in full.
"""

from __future__ import annotations

import math

SCHEDULES = ("linear", "cosine", "constant", "constant_with_warmup")
FLOOR = 1e-3
"""Smallest warm-up factor: the first step must move the weights, or it is wasted."""


def progress(step: int, total_steps: int, elapsed_s: float | None = None, budget_s: float | None = None) -> float:
    """Share of the run done before optimizer step ``step`` (0-based), in ``[0, 1]``.

    Args:
        step: optimizer steps already taken.
        total_steps: planned optimizer steps.
        elapsed_s: seconds spent so far (the same number on every process).
        budget_s: the time budget, or ``None``.
    """
    done = step / max(total_steps, 1)
    if budget_s and elapsed_s is not None:
        done = max(done, elapsed_s / budget_s)
    return min(max(done, 0.0), 1.0)


def lr_factor(done: float, warmup_ratio: float, kind: str = "linear") -> float:
    """Multiplier of the base learning rate at progress ``done``.

    Args:
        done: progress in ``[0, 1]`` (:func:`progress`).
        warmup_ratio: share of the run with a linearly rising rate.
        kind: one of :data:`SCHEDULES`.

    Returns:
        The factor, ``FLOOR``..1 while warming up, then per ``kind``.

    Example:
        >>> lr_factor(0.5, 0.0, "linear")
        0.5
    """
    if kind == "constant":
        return 1.0
    if warmup_ratio and done < warmup_ratio:
        return max(done / warmup_ratio, FLOOR)
    if kind == "constant_with_warmup":
        return 1.0
    rest = (done - warmup_ratio) / (1.0 - warmup_ratio)
    if kind == "linear":
        return max(0.0, 1.0 - rest)
    if kind == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * min(rest, 1.0)))
    raise ValueError(f"unknown schedule {kind!r}; choose one of {', '.join(SCHEDULES)}")
