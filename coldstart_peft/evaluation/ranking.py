"""Score ranking cases with any pair scorer and turn the scores into metrics."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence

import numpy as np
from tqdm.auto import tqdm

from coldstart_peft.errors import DataError
from coldstart_peft.evaluation.metrics import DEFAULT_KS, _rank_bounds, metrics_from_ranks, summarize
from coldstart_peft.examples import RankingCase
from coldstart_peft.scorer import Scorer, takes_ids

PairScorer = Callable[[Sequence[str], Sequence[str]], np.ndarray]
"""Any function mapping aligned lists of user texts and item texts to one score per pair.

One that also takes ``context_ids=`` and ``item_ids=`` keywords (as :meth:`Scorer.score` does)
gets each pair's ids too, so id-keyed priors score evaluation exactly as they trained."""


def score_cases(
    score_pairs: PairScorer,
    cases: Sequence[RankingCase],
    batch_size: int = 4096,
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
    ids = {}
    if takes_ids(score_pairs):
        ids["context_ids"] = [c.context_ids for c in cases for _ in c.candidate_texts]
        ids["item_ids"] = [i for c in cases for i in (c.candidate_ids or [None] * len(c.candidate_texts))]
    flat = np.empty(len(items), dtype=np.float64)
    owner = getattr(score_pairs, "__self__", None)  # a bound Scorer.score may reuse embeddings across chunks
    frozen = owner.frozen() if isinstance(owner, Scorer) else contextlib.nullcontext()
    with frozen:
        if isinstance(owner, Scorer):  # the work is the distinct texts: embed them under their own bar
            owner.precompute(users, items, progress=progress)
        bar = tqdm(total=len(items), desc="scoring", unit="pair", disable=not progress, leave=False)
        for start in range(0, len(items), batch_size):
            stop = start + batch_size
            chunk = {name: values[start:stop] for name, values in ids.items()}
            flat[start:stop] = np.asarray(score_pairs(users[start:stop], items[start:stop], **chunk), dtype=np.float64)
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
    better, tied = ranks_from_scores(scores, cases)
    return metrics_from_case_ranks(better, tied, cases, ks)


def ranks_from_scores(scores: Sequence[np.ndarray], cases: Sequence[RankingCase]) -> tuple[np.ndarray, np.ndarray]:
    """Per case, how many candidates score above its target and how many tie with it.

    What :func:`~coldstart_peft.evaluation.metrics.metrics_from_ranks` reads, so a run can keep two
    small integers per user and compute any metric from them later (the same values as
    :func:`metrics_from_scores`); cases may have different candidate counts.
    """
    better, tied = np.zeros(len(cases), dtype=np.int64), np.zeros(len(cases), dtype=np.int64)
    for row, (case, values) in enumerate(zip(cases, scores)):
        # The counts ranking_metrics reads, so ties mean here exactly what they mean there.
        (better[row],), (tied[row],) = _rank_bounds(np.asarray(values)[None, :], [case.target])
    return better, tied


def metrics_from_case_ranks(
    better: np.ndarray, tied: np.ndarray, cases: Sequence[RankingCase], ks=DEFAULT_KS
) -> dict[str, np.ndarray]:
    """Per-case metrics, AUC included, from :func:`ranks_from_scores`' counts: a run that keeps the
    ranks gets its metrics without counting them twice."""
    per_row = metrics_from_ranks(better, tied, ks)
    n_negatives = np.array([len(case.candidate_texts) - 1 for case in cases], dtype=np.float64)
    per_row["auc"] = (n_negatives - np.asarray(better) - 0.5 * np.asarray(tied)) / np.maximum(n_negatives, 1.0)
    return per_row


def evaluate_ranking(
    score_pairs: PairScorer,
    cases: Sequence[RankingCase],
    batch_size: int = 4096,
    progress: bool = False,
    seed: int = 0,
) -> dict[str, dict[str, float]]:
    """Score ``cases`` and summarize: mean and 95% bootstrap interval of every metric.

    Example:
        >>> summary = evaluate_ranking(scorer.score, split.test_cases)
        >>> summary["ndcg@10"]["mean"]
    """
    if not cases:
        raise DataError("no ranking cases to evaluate: the split has no eligible users; try a smaller k or more users")
    scores = score_cases(score_pairs, cases, batch_size=batch_size, progress=progress)
    return summarize(metrics_from_scores(scores, cases), seed=seed)


def segment_report(
    scores: Sequence[np.ndarray], cases: Sequence[RankingCase], ks=DEFAULT_KS, seed: int = 0, min_cases: int = 1
) -> dict[str, dict[str, dict[str, float]]]:
    """Summaries overall, per segment and per domain, each with 95% bootstrap intervals.

    Args:
        scores: one score array per case (from :func:`score_cases` or a baseline).
        cases: the cases, aligned with ``scores``.
        ks: cut-offs for HR@k and NDCG@k.
        seed: bootstrap seed.
        min_cases: groups with fewer cases are left out (their intervals would be meaningless).

    Returns:
        ``{"overall": summary, "segment=cold-user": summary, "domain=Makeup": summary, ...}``,
        where each summary also has ``"n": {"mean": case count}``.

    Example:
        >>> report = segment_report(scores, cases)
        >>> report["domain=Makeup"]["ndcg@10"]["mean"]
    """
    per_row = metrics_from_scores(scores, cases, ks)
    groups: dict[str, list[int]] = {"overall": list(range(len(cases)))}
    for index, case in enumerate(cases):
        if case.segment:
            groups.setdefault(f"segment={case.segment}", []).append(index)
        if case.domain:
            groups.setdefault(f"domain={case.domain}", []).append(index)
    report = {}
    for name, rows in groups.items():
        if len(rows) >= min_cases:
            summary = summarize({metric: values[rows] for metric, values in per_row.items()}, seed=seed)
            summary["n"] = {"mean": float(len(rows)), "low": float(len(rows)), "high": float(len(rows))}
            report[name] = summary
    return report


def evaluate_by_segment(
    score_pairs: PairScorer, cases: Sequence[RankingCase], batch_size: int = 256, progress: bool = False, seed: int = 0
) -> dict[str, dict[str, dict[str, float]]]:
    """Like :func:`evaluate_ranking`, but reported overall, per segment and per domain (see :func:`segment_report`)."""
    if not cases:
        raise DataError("no ranking cases to evaluate: the split has no eligible users; try a smaller k or more users")
    scores = score_cases(score_pairs, cases, batch_size=batch_size, progress=progress)
    return segment_report(scores, cases, seed=seed)
