"""Ranking metrics: pure functions on score arrays, one positive per row.

Ties are scored as the expectation under uniformly random tie-breaking, so a scorer that
returns a constant gets exactly chance (HR@10 = 10/100 with 100 candidates), never the
best case. Every function returns per-row values; average them yourself or use
:func:`summarize`, which also gives a bootstrap interval over rows (users).
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy import stats
from sklearn.metrics import roc_auc_score

DEFAULT_KS = (1, 5, 10, 20)


def _rank_bounds(scores: np.ndarray, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return, per row, how many candidates beat the positive and how many tie with it."""
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim != 2:
        raise ValueError(f"scores must be 2-D (rows x candidates), got shape {scores.shape}")
    targets = np.asarray(targets, dtype=np.int64)
    positive = scores[np.arange(len(scores)), targets][:, None]
    better = (scores > positive).sum(axis=1)
    tied = (scores == positive).sum(axis=1) - 1  # the positive ties with itself
    return better, tied


def _expected_over_ranks(better: np.ndarray, tied: np.ndarray, gain) -> np.ndarray:
    """Average ``gain(rank)`` over the ranks better+1 .. better+tied+1, each equally likely."""
    out = np.empty(len(better), dtype=np.float64)
    for row, (b, t) in enumerate(zip(better, tied)):
        ranks = np.arange(b + 1, b + t + 2, dtype=np.float64)
        out[row] = gain(ranks).mean()
    return out


def hit_rate_at_k(scores, targets, k: int) -> np.ndarray:
    """Per-row probability that the positive ranks in the top ``k``."""
    better, tied = _rank_bounds(scores, targets)
    return _expected_over_ranks(better, tied, lambda r: (r <= k).astype(np.float64))


def ndcg_at_k(scores, targets, k: int) -> np.ndarray:
    """Per-row NDCG@k with one relevant item: 1/log2(1+rank) if rank <= k, else 0."""
    better, tied = _rank_bounds(scores, targets)
    return _expected_over_ranks(better, tied, lambda r: np.where(r <= k, 1.0 / np.log2(1.0 + r), 0.0))


def mrr(scores, targets) -> np.ndarray:
    """Per-row reciprocal rank of the positive."""
    better, tied = _rank_bounds(scores, targets)
    return _expected_over_ranks(better, tied, lambda r: 1.0 / r)


def auc(scores, targets) -> np.ndarray:
    """Per-row AUC: the share of negatives scored below the positive, ties counting half."""
    scores = np.asarray(scores, dtype=np.float64)
    better, tied = _rank_bounds(scores, targets)
    n_negatives = scores.shape[1] - 1
    return (n_negatives - better - tied + 0.5 * tied) / max(n_negatives, 1)


def metrics_from_ranks(better, tied, ks=DEFAULT_KS) -> dict[str, np.ndarray]:
    """HR@k, NDCG@k and MRR per row from how many candidates beat or tie with the positive.

    Full-catalog evaluation counts these from a score matrix without ever building one
    candidate list per user, then shares the tie handling of :func:`ranking_metrics`.

    Args:
        better: per row, candidates scored strictly above the positive.
        tied: per row, other candidates scored exactly as the positive.
        ks: cut-offs for HR@k and NDCG@k.

    Returns:
        ``{"hr@10": per-row array, "ndcg@10": ..., "mrr": ...}``.

    Example:
        >>> metrics_from_ranks([0, 3], [0, 0], ks=(1,))["hr@1"]
        array([1., 0.])
    """
    better = np.asarray(better, dtype=np.int64)
    tied = np.asarray(tied, dtype=np.int64)
    out: dict[str, np.ndarray] = {}
    for k in ks:
        out[f"hr@{k}"] = _expected_over_ranks(better, tied, lambda r, k=k: (r <= k).astype(np.float64))
        out[f"ndcg@{k}"] = _expected_over_ranks(
            better, tied, lambda r, k=k: np.where(r <= k, 1.0 / np.log2(1.0 + r), 0.0)
        )
    out["mrr"] = _expected_over_ranks(better, tied, lambda r: 1.0 / r)
    return out


def ranking_metrics(scores, targets=None, ks=DEFAULT_KS) -> dict[str, np.ndarray]:
    """Compute every ranking metric per row.

    Args:
        scores: array (rows, candidates); higher means more relevant.
        targets: index of the positive in each row; ``None`` means column 0.
        ks: cut-offs for HR@k and NDCG@k.

    Returns:
        ``{"hr@10": per-row array, "ndcg@10": ..., "mrr": ..., "auc": ...}``.

    Example:
        >>> ranking_metrics([[0.9, 0.1, 0.5]])["mrr"]
        array([1.])
    """
    scores = np.asarray(scores, dtype=np.float64)
    if targets is None:
        targets = np.zeros(len(scores), dtype=np.int64)
    better, tied = _rank_bounds(scores, targets)
    out = metrics_from_ranks(better, tied, ks)
    out["auc"] = auc(scores, targets)
    return out


def bootstrap_ci(values, n_resamples: int = 1000, confidence: float = 0.95, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``values`` (resampling rows), by :func:`scipy.stats.bootstrap`.

    ``nan`` for no values; a single value is its own interval (scipy needs two to resample).
    """
    values = np.asarray(values, dtype=np.float64)
    if len(values) == 0:
        return float("nan"), float("nan")
    if len(values) == 1:
        return float(values[0]), float(values[0])
    result = stats.bootstrap((values,), np.mean, n_resamples=n_resamples, confidence_level=confidence,
                             method="percentile", vectorized=True, rng=np.random.default_rng(seed))  # fmt: skip
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def paired_bootstrap(values, reference, n_resamples: int = 1000, confidence: float = 0.95, seed: int = 0) -> dict:
    """How ``values`` compare with ``reference`` on the same rows (users): difference and ratio of the means.

    Each interval is a percentile bootstrap that resamples rows jointly (:func:`scipy.stats.bootstrap`
    with ``paired=True``), so what the two share (the users, their candidates) cancels out: the
    difference is often sure where the two rows' own intervals overlap.

    Returns:
        ``{"difference": {"mean", "low", "high"}, "ratio": {"mean", "low", "high"}, "n": rows}``;
        the ratio is ``nan`` where the reference's mean is 0.

    Raises:
        ValueError: the two do not have the same number of rows.

    Example:
        >>> paired_bootstrap([0.5, 1.0], [0.5, 0.5])["difference"]["mean"]
        0.25
    """
    values, reference = np.asarray(values, dtype=np.float64), np.asarray(reference, dtype=np.float64)
    if values.shape != reference.shape or values.ndim != 1:
        raise ValueError(f"paired rows must be two 1-D arrays of one length, got shapes {values.shape} and {reference.shape}")

    def difference(a, b, axis=-1):
        return a.mean(axis=axis) - b.mean(axis=axis)

    def ratio(a, b, axis=-1):
        denominator = b.mean(axis=axis)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(denominator > 0, a.mean(axis=axis) / denominator, np.nan)

    out: dict = {"n": len(values)}
    for name, statistic in (("difference", difference), ("ratio", ratio)):
        mean = float(statistic(values, reference))
        if len(values) < 2 or not np.isfinite(mean):
            out[name] = {"mean": mean, "low": mean, "high": mean}
            continue
        with warnings.catch_warnings():
            # Resamples whose reference mean is 0 have no ratio; the interval then comes back nan, which says so.
            warnings.simplefilter("ignore", stats.DegenerateDataWarning)
            result = stats.bootstrap((values, reference), statistic, paired=True, n_resamples=n_resamples,
                                     confidence_level=confidence, method="percentile", vectorized=True,
                                     rng=np.random.default_rng(seed))  # fmt: skip
        out[name] = {"mean": mean, "low": float(result.confidence_interval.low), "high": float(result.confidence_interval.high)}
    return out


def summarize(per_row: dict[str, np.ndarray], seed: int = 0) -> dict[str, dict[str, float]]:
    """Average per-row metrics and attach a 95% bootstrap interval.

    Returns:
        ``{"ndcg@10": {"mean": .., "low": .., "high": ..}, ...}``.
    """
    summary = {}
    for name, values in per_row.items():
        low, high = bootstrap_ci(values, seed=seed)
        summary[name] = {"mean": float(np.mean(values)) if len(values) else float("nan"), "low": low, "high": high}
    return summary


def pointwise_auc(scores, labels) -> float:
    """Global ROC AUC of labeled pairs (:func:`sklearn.metrics.roc_auc_score`): the chance a random
    positive outscores a random negative.

    Labels above 0.5 are positives. Ties count half, matching :func:`auc`. Returns ``nan`` when
    only one class is present.

    Example:
        >>> pointwise_auc([0.9, 0.2, 0.5, 0.5], [1, 0, 1, 0])
        0.875
    """
    labels = np.asarray(labels, dtype=np.float64) > 0.5
    if labels.all() or not labels.any():
        return float("nan")
    return float(roc_auc_score(labels, np.asarray(scores, dtype=np.float64)))


def log_loss(probabilities, labels, eps: float = 1e-7) -> float:
    """Mean binary cross-entropy of probabilities against labels in [0, 1] (probabilities clipped to ``eps``).

    Not :func:`sklearn.metrics.log_loss`: pairs files may hold soft labels (0.7), which it
    rejects, and since 1.5 it clips at machine epsilon, which would change saturated values.
    """
    p = np.clip(np.asarray(probabilities, dtype=np.float64), eps, 1.0 - eps)
    y = np.asarray(labels, dtype=np.float64)
    return float(-np.mean(y * np.log(p) + (1.0 - y) * np.log(1.0 - p)))


def pointwise_metrics(scores, labels, from_logits: bool = True) -> dict[str, float]:
    """AUC and log-loss of labeled pairs (the seed's binary like/dislike objective).

    Args:
        scores: one score per pair; logits when ``from_logits`` (a sigmoid is applied for the log-loss).
        labels: 0/1 labels.
        from_logits: whether ``scores`` are logits rather than probabilities.

    Returns:
        ``{"auc": .., "log_loss": .., "n": .., "positive_rate": ..}``.
    """
    scores = np.asarray(scores, dtype=np.float64)
    probabilities = 1.0 / (1.0 + np.exp(-scores)) if from_logits else scores
    labels = np.asarray(labels, dtype=np.float64)
    return {
        "auc": pointwise_auc(scores, labels),
        "log_loss": log_loss(probabilities, labels),
        "n": int(len(labels)),
        "positive_rate": float(labels.mean()) if len(labels) else float("nan"),
    }
