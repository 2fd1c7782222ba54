"""Training on a handful of labeled pairs: a step plan, a pointwise loss, and an AUC with its interval.

Few-shot like/dislike data (TALLRec's 16, 64 or 256 examples) breaks three assumptions made for
a dataset's thousands of users. One epoch of 16 pairs is a single optimizer step, so the plan
below sizes batches and epochs to take about :data:`MIN_STEPS` steps. Each user usually has one
pair, so there is nothing to rank within a group: every scorer trains pointwise (binary
cross-entropy), and the bi-encoder is switched to it. And there is no validation split to
spare, so the AUC is estimated by k-fold cross-validation: every pair is scored by a model that
never saw it, and the interval comes from bootstrapping those out-of-fold scores.
"""

from __future__ import annotations

import dataclasses
import math
import random
from collections.abc import Sequence
from typing import Any

import numpy as np

from coldstart_peft.errors import ConfigError
from coldstart_peft.evaluation.metrics import pointwise_auc, pointwise_metrics
from coldstart_peft.evaluation.pointwise import evaluate_pointwise
from coldstart_peft.examples import TrainGroup
from coldstart_peft.host import PluginHost, default_host
from coldstart_peft.labeled_pairs import LabeledPair, group_pairs
from coldstart_peft.method import build_config

MIN_STEPS = 100
"""Optimizer steps a few-shot run aims for when its length is not given."""
MAX_EPOCHS = 30
"""Cap on the planned epochs: past it a tiny file is memorised rather than learned from."""
MIN_BATCHES = 4
"""Batches per epoch the plan keeps at least, so an epoch is more than one step."""
AUTO_CV_PAIRS = 512
"""Files up to this many pairs are cross-validated by default when no validation file is given."""


def is_pointwise(groups: Sequence[TrainGroup]) -> bool:
    """Whether no group holds both a positive and a negative (nothing to rank within a user)."""
    return not any(any(y > 0.5 for y in g.labels) and any(y <= 0.5 for y in g.labels) for g in groups)


def plan_steps_for_pairs(config, n_groups: int, batch_size_given: bool = False, epochs_given: bool = False):
    """``config`` with batch size and epochs fitted to a small file, where the user set neither.

    Batches shrink to keep at least :data:`MIN_BATCHES` per epoch (never below 4 groups). Epochs
    grow until the run takes about :data:`MIN_STEPS` steps (at most :data:`MAX_EPOCHS`), or
    until it reaches ``max_steps`` when that is set; under a time budget the budget decides, up
    to :data:`MAX_EPOCHS`. A file big enough for :data:`MIN_STEPS` batches keeps one epoch.

    Args:
        config: the engine's :class:`~coldstart_peft.training.TrainConfig`.
        n_groups: training groups in the file.
        batch_size_given: the user chose the batch size.
        epochs_given: the user chose the number of epochs.

    Returns:
        A new ``TrainConfig``.
    """
    batch_size = config.batch_size
    if not batch_size_given:
        batch_size = max(4, min(batch_size, n_groups // MIN_BATCHES))
    steps_per_epoch = max(1, math.ceil(math.ceil(n_groups / batch_size) / config.grad_accum))
    epochs = config.epochs
    if not epochs_given:
        if config.max_steps is not None:
            epochs = math.ceil(config.max_steps / steps_per_epoch)
        elif config.time_budget_s is not None:
            epochs = MAX_EPOCHS
        else:
            epochs = min(MAX_EPOCHS, math.ceil(MIN_STEPS / steps_per_epoch))
    return dataclasses.replace(config, batch_size=batch_size, epochs=max(1, epochs))


def pointwise_scorer_config(scorer: str, scorer_config: dict[str, Any] | None, host: PluginHost | None = None) -> dict[str, Any]:
    """``scorer_config`` with ``loss="bce"`` added when the scorer has a loss and the user chose none.

    Scorers whose loss ranks items within a group already fall back to BCE on groups of one;
    the bi-encoder's softmax would instead treat other users' items as negatives.
    """
    config = dict(scorer_config or {})
    if "loss" in config:
        return config
    config_class = (host or default_host()).scorer(scorer).config_class
    if "loss" not in {f.name for f in dataclasses.fields(config_class)}:
        return config
    try:
        build_config(config_class, {**config, "loss": "bce"})
    except ConfigError:
        return config
    return {**config, "loss": "bce"}


def folds_of(pairs: Sequence[LabeledPair], folds: int, seed: int) -> list[list[int]]:
    """Pair indices in ``folds`` parts; pairs of one user (text and domain) stay in one part."""
    users: dict[tuple[str, str | None], list[int]] = {}
    for i, pair in enumerate(pairs):
        users.setdefault((pair.user_text, pair.domain), []).append(i)
    keys = list(users)
    random.Random(seed).shuffle(keys)
    parts: list[list[int]] = [[] for _ in range(folds)]
    for n, key in enumerate(keys):
        parts[n % folds].extend(users[key])
    return parts


def cross_validated_auc(fit, pairs: Sequence[LabeledPair], folds: int = 5, seed: int = 0, n_resamples: int = 1000) -> dict[str, Any]:
    """Out-of-fold AUC of ``fit`` on ``pairs``, with a 95% bootstrap interval.

    Args:
        fit: ``fit(train_groups) -> scorer``; called once per fold on the other folds' pairs.
        pairs: the labeled pairs.
        folds: parts to split the users into (at least 2).
        seed: which users go in which fold, and the bootstrap.
        n_resamples: bootstrap resamples of the interval.

    Returns:
        ``{"auc", "auc_low", "auc_high", "log_loss", "n", "positive_rate", "folds"}``.

    Raises:
        ConfigError: fewer than 2 folds, more folds than users, or labels of one kind only.
    """
    labels = [p.label for p in pairs]
    if folds < 2:
        raise ConfigError(f"cross-validation needs at least 2 folds, got {folds}")
    if len({y > 0.5 for y in labels}) < 2:
        raise ConfigError("the AUC needs both positive and negative pairs; the file has labels of one kind only")
    parts = folds_of(pairs, folds, seed)
    if any(not part for part in parts):
        raise ConfigError(f"{folds} folds need at least {folds} users; use fewer folds (--cv-folds)")
    scores = np.zeros(len(pairs))
    for held in parts:
        kept = set(held)
        scorer = fit(group_pairs([p for i, p in enumerate(pairs) if i not in kept]))
        scores[held] = scorer.score([pairs[i].user_text for i in held], [pairs[i].item_text for i in held])
    out = scores_report(scores, labels, n_resamples=n_resamples, seed=seed)
    out["folds"] = folds
    return out


def scores_report(scores: np.ndarray, labels: Sequence[float], n_resamples: int = 1000, seed: int = 0) -> dict[str, Any]:
    """AUC with a 95% bootstrap interval (pairs resampled) and log-loss of logits ``scores``."""
    out = pointwise_metrics(np.asarray(scores, dtype=np.float64), labels, from_logits=True)
    y = np.asarray(labels, dtype=np.float64)
    rng = np.random.default_rng(seed)
    resampled = [pointwise_auc(scores[idx], y[idx]) for idx in rng.integers(0, len(y), size=(n_resamples, len(y)))]
    out["auc_low"], out["auc_high"] = (float(np.nanquantile(resampled, q)) for q in (0.025, 0.975))
    return out


def held_out_auc(scorer, pairs: Sequence[LabeledPair], seed: int = 0) -> dict[str, Any]:
    """AUC (with its 95% interval) and log-loss of a trained scorer on held-out pairs."""
    return evaluate_pointwise(scorer.score, [p.user_text for p in pairs], [p.item_text for p in pairs],
                              [p.label for p in pairs], n_resamples=1000, seed=seed)  # fmt: skip


def auc_line(report: dict[str, Any], what: str) -> str:
    """One line: ``AUC 0.671 (95% CI 0.637-0.705) on …, log-loss …``."""
    return (f"AUC {report['auc']:.3f} (95% CI {report['auc_low']:.3f}-{report['auc_high']:.3f}) {what}, "
            f"log-loss {report['log_loss']:.3f}, {report['n']} pairs")  # fmt: skip
