"""Score ranking cases with any pair scorer and turn the scores into metrics."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from tqdm.auto import tqdm

from coldstart_peft.evaluation.metrics import DEFAULT_KS, ranking_metrics, summarize
from coldstart_peft.examples import RankingCase

PairScorer = Callable[[Sequence[str], Sequence[str]], np.ndarray]
"""Any function mapping aligned lists of user texts and item texts to one score per pair."""


def score_cases(
    score_pairs: PairScorer,
    cases: Sequence[RankingCase],
    batch_size: int = 256,
    progress: bool = False,
) -> list[np.ndarray]:
    """Score every candidate of every case, batching pairs across cases.

    Args:
        score_pairs: the pair scorer (a trained scorer's ``score`` or a baseline).
        cases: the ranking cases.
        batch_size: pairs per call of ``score_pairs``.
        progress: show a tqdm bar.

    Returns:
        One score array per case, aligned with its ``candidate_texts``.
    """
    users = [c.user_text for c in cases for _ in c.candidate_texts]
    items = [t for c in cases for t in c.candidate_texts]
    flat = np.empty(len(items), dtype=np.float64)
    bar = tqdm(total=len(items), desc="scoring", unit="pair", disable=not progress)
    for start in range(0, len(items), batch_size):
        stop = start + batch_size
        flat[start:stop] = np.asarray(score_pairs(users[start:stop], items[start:stop]), dtype=np.float64)
        bar.update(min(stop, len(items)) - start)
    bar.close()
    out, offset = [], 0
    for case in cases:
        n = len(case.candidate_texts)
        out.append(flat[offset : offset + n])
        offset += n
    return out


def metrics_from_scores(
    scores: Sequence[np.ndarray], cases: Sequence[RankingCase], ks=DEFAULT_KS
) -> dict[str, np.ndarray]:
    """Per-case metrics; cases may have different candidate counts."""
    per_row: dict[str, list[float]] = {}
    for case, row in zip(cases, scores):
        for name, value in ranking_metrics(np.asarray(row)[None, :], [case.target], ks).items():
            per_row.setdefault(name, []).append(float(value[0]))
    return {name: np.asarray(values) for name, values in per_row.items()}


def evaluate_ranking(
    score_pairs: PairScorer,
    cases: Sequence[RankingCase],
    batch_size: int = 256,
    progress: bool = False,
    seed: int = 0,
) -> dict[str, dict[str, float]]:
    """Score ``cases`` and summarize: mean and 95% bootstrap interval of every metric.

    Example:
        >>> summary = evaluate_ranking(scorer.score, split.test_cases)
        >>> summary["ndcg@10"]["mean"]
    """
    if not cases:
        raise ValueError("no ranking cases to evaluate")
    scores = score_cases(score_pairs, cases, batch_size=batch_size, progress=progress)
    return summarize(metrics_from_scores(scores, cases), seed=seed)
