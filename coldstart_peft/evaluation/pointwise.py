"""Pointwise evaluation of labeled pairs: AUC and log-loss of a pair scorer.

Few-shot like/dislike benchmarks (TALLRec and others) state results this way, so a
scorer trained with the binary objective is evaluated on the same footing.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from coldstart_peft.evaluation.metrics import pointwise_auc, pointwise_metrics
from coldstart_peft.evaluation.ranking import PairScorer


def evaluate_pointwise(
    score_pairs: PairScorer,
    user_texts: Sequence[str],
    item_texts: Sequence[str],
    labels: Sequence[float],
    from_logits: bool = True,
    batch_size: int = 256,
    n_resamples: int = 200,
    seed: int = 0,
) -> dict[str, float]:
    """Score labeled pairs and report AUC (with a 95% bootstrap interval) and log-loss.

    Args:
        score_pairs: maps aligned user and item texts to one score per pair.
        user_texts: the user side of each pair.
        item_texts: the item side of each pair.
        labels: 0/1 labels.
        from_logits: the scorer returns logits (sigmoid applied for the log-loss); else probabilities.
        batch_size: pairs per scorer call.
        n_resamples: bootstrap resamples of the AUC interval (pairs resampled).
        seed: bootstrap seed.

    Returns:
        ``{"auc", "auc_low", "auc_high", "log_loss", "n", "positive_rate"}``.
    """
    if not (len(user_texts) == len(item_texts) == len(labels)) or not labels:
        raise ValueError("user_texts, item_texts and labels must be non-empty and of equal length")
    scores = np.concatenate(
        [np.asarray(score_pairs(user_texts[i : i + batch_size], item_texts[i : i + batch_size]), dtype=np.float64)
         for i in range(0, len(labels), batch_size)]
    )  # fmt: skip
    out = pointwise_metrics(scores, labels, from_logits=from_logits)
    rng = np.random.default_rng(seed)
    y = np.asarray(labels, dtype=np.float64)
    resampled = [pointwise_auc(scores[idx], y[idx]) for idx in rng.integers(0, len(y), size=(n_resamples, len(y)))]
    out["auc_low"], out["auc_high"] = (float(np.nanquantile(resampled, q)) for q in (0.025, 0.975))
    return out
