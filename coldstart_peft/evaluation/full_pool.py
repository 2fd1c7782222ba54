"""Full-pool ranking, the one protocol trained scorers and baselines share.

Each case's target is ranked against every item of the split's candidate pool
(:meth:`~coldstart_peft.data.splits.ColdStartSplit.candidate_pool`: the whole catalog for
cold users, the cold items, or the held-out domain), the user's known items left out and the
target never. :func:`pool_ranks` turns a ``(users, pool)`` score matrix into ranks for both
paths: :func:`~coldstart_peft.evaluation.full_catalog.evaluate_full_catalog` (a bi-encoder's
matrix product plus its priors) and :func:`evaluate_baseline_full_pool` (a baseline's
:meth:`~coldstart_peft.evaluation.baselines.Baseline.score_pool`), so their figures compare.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from coldstart_peft.data.splits import CaseRecord, ColdStartSplit
from coldstart_peft.data.text import TextSerializer
from coldstart_peft.errors import DataError
from coldstart_peft.evaluation.metrics import metrics_from_ranks, summarize

FULL_POOL_KS = (10, 20)
"""Cut-offs compare_methods reports for the full-pool protocol (Recall@K and NDCG@K)."""


def known_items(record: CaseRecord) -> set[str]:
    """Items left out of ``record``'s full ranking: its context items, never its target.

    A repeat purchase (target in the context) stays rankable, so such cases are kept and scored.
    """
    return {i for i in record.context if i != record.target}


def pool_ranks(scores, pool: Sequence[str], records: Sequence[CaseRecord]) -> tuple[np.ndarray, np.ndarray]:
    """Per record, how many pool items score above its target and how many tie with it.

    Args:
        scores: ``(records, pool)`` scores (numpy or a CPU torch tensor); each record's known
            items are set to ``-inf`` in place, so a caller's later top-k skips them too.
        pool: the item id of each column.
        records: the cases, aligned with the rows; each target must be in ``pool``.

    Returns:
        ``(better, tied)`` integer arrays for :func:`~coldstart_peft.evaluation.metrics.metrics_from_ranks`.

    Raises:
        DataError: a target is not in the pool.
    """
    matrix = scores.detach().numpy() if hasattr(scores, "detach") else np.asarray(scores)  # shares memory
    column = {item: j for j, item in enumerate(pool)}
    better, tied = np.zeros(len(records), dtype=np.int64), np.zeros(len(records), dtype=np.int64)
    for row, record in enumerate(records):
        if record.target not in column:
            raise DataError(f"target {record.target!r} of user {record.user_id!r} is not in the candidate pool; "
                            "rank against the split's candidate_pool()")  # fmt: skip
        excluded = [column[i] for i in known_items(record) if i in column]
        if excluded:
            matrix[row, excluded] = -np.inf
        positive = matrix[row, column[record.target]]
        better[row] = int((matrix[row] > positive).sum())
        tied[row] = int((matrix[row] == positive).sum()) - 1
    return better, tied


def full_pool_summary(better: np.ndarray, tied: np.ndarray, ks: Sequence[int] = FULL_POOL_KS, seed: int = 0) -> dict:
    """Recall@K, NDCG@K and MRR with 95% bootstrap intervals from :func:`pool_ranks`' counts."""
    per_row = metrics_from_ranks(better, tied, ks)
    # One relevant item per user: the hit rate at K is the recall at K.
    return summarize({name.replace("hr@", "recall@"): values for name, values in per_row.items()}, seed=seed)


def evaluate_baseline_full_pool(
    baseline,
    split: ColdStartSplit,
    which: str = "test",
    ks: Sequence[int] = FULL_POOL_KS,
    serializer: TextSerializer | None = None,
    batch_size: int = 256,
    seed: int = 0,
) -> dict:
    """Rank each case's target against the split's whole candidate pool with a fitted baseline.

    Args:
        baseline: a fitted :class:`~coldstart_peft.evaluation.baselines.Baseline` (anything with
            ``score_pool(cases, item_ids, item_texts)``).
        split: the split; its ``which`` records are ranked, their sampled negatives ignored.
        which: ``"valid"`` or ``"test"``.
        ks: cut-offs for Recall@K and NDCG@K.
        serializer: text templates for users and items; defaults to ``TextSerializer()``.
        batch_size: users scored per ``score_pool`` call.
        seed: bootstrap seed.

    Returns:
        ``{"n_cases", "n_items", "retrieval": summary, "ranks": {"better", "tied"}}``, as
        :func:`~coldstart_peft.evaluation.full_catalog.evaluate_full_catalog` reports it.

    Example:
        >>> split = cold_user_split(load_dataset("beauty"), max_test_users=1000)
        >>> report = evaluate_baseline_full_pool(make_baseline("tfidf").fit(split), split)
        >>> report["retrieval"]["ndcg@10"]["mean"]
    """
    serializer = serializer or TextSerializer()
    records = split.valid if which == "valid" else split.test
    cases = split.ranking_cases(which, serializer)
    if not cases:
        raise DataError(f"the split has no {which} cases to rank; is max_test_users 0 or the split empty?")
    pool = split.candidate_pool()
    texts = [serializer.item(split.dataset.items[i]) for i in pool]
    better, tied = np.zeros(len(cases), dtype=np.int64), np.zeros(len(cases), dtype=np.int64)
    for start in range(0, len(cases), batch_size):
        stop = min(start + batch_size, len(cases))
        scores = np.array(baseline.score_pool(cases[start:stop], pool, texts), dtype=np.float64)
        if scores.shape != (stop - start, len(pool)):
            raise DataError(f"{type(baseline).__name__}.score_pool returned shape {scores.shape}, "
                            f"expected {(stop - start, len(pool))} (cases x pool items)")  # fmt: skip
        better[start:stop], tied[start:stop] = pool_ranks(scores, pool, records[start:stop])
    return {"n_cases": len(cases), "n_items": len(pool), "retrieval": full_pool_summary(better, tied, ks, seed),
            "ranks": {"better": better.tolist(), "tied": tied.tolist()}}
