"""Full-catalog ranking: each cold user's held-out item ranked against every item, not 99 negatives.

A two-tower scorer ranks the whole catalog with one matrix product per batch of users, so
Recall@K and NDCG@K are computed over all items (the user's known items excluded, as a
recommender would). With a reranker, the top ``n_candidates`` are reordered by it and the
rest keep their retrieval order below them: exactly what :class:`~coldstart_peft.retrieval.Recommender`
returns. Ties count as the expectation under random tie-breaking, as everywhere else.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from coldstart_peft.data.splits import CaseRecord, ColdStartSplit
from coldstart_peft.data.text import TextSerializer
from coldstart_peft.evaluation.full_pool import full_pool_summary, pool_ranks
from coldstart_peft.retrieval.catalog_prior import CatalogPrior
from coldstart_peft.retrieval.index import ItemIndex
from coldstart_peft.retrieval.recommender import Reranker, rerank_scores

FULL_CATALOG_KS = (10, 20, 50)


def evaluate_full_catalog(
    encoder,
    split: ColdStartSplit,
    which: str = "test",
    reranker: Reranker | None = None,
    n_candidates: int = 50,
    ks: Sequence[int] = FULL_CATALOG_KS,
    index: ItemIndex | None = None,
    serializer: TextSerializer | None = None,
    max_cases: int | None = None,
    exclude_seen: bool = True,
    batch_size: int = 256,
    progress: bool = False,
    seed: int = 0,
    priors: bool = True,
    items: Sequence[str] | None = None,
) -> dict:
    """Recall@K / NDCG@K / MRR of a split's cold users over the whole catalog.

    Args:
        encoder: a two-tower scorer (``encode`` and ``scale``), e.g. a ``bi-encoder``.
        split: the cold-start split; its cases give each user's context and target
            (their sampled negatives are ignored).
        which: ``"valid"`` or ``"test"``.
        reranker: optional reranker of each user's top ``n_candidates`` (anything with ``score``).
        n_candidates: candidates the reranker reorders.
        ks: cut-offs for Recall@K and NDCG@K.
        index: an index of the split's catalog built with ``encoder``; built here if ``None``.
        serializer: text templates; defaults to ``TextSerializer()``.
        max_cases: evaluate only the first N cases.
        exclude_seen: leave each user's known items out of the ranking (the target never is).
        batch_size: users ranked per matrix product.
        progress: show progress bars.
        seed: bootstrap seed.
        priors: rank by the encoder plus its priors (:attr:`Scorer.priors`, when it has them),
            exactly as :meth:`Scorer.score` and :class:`~coldstart_peft.retrieval.Recommender`
            do; ``False`` ranks by the encoder's similarity alone.
        items: the item ids to rank (when ``index`` is ``None``); ``None`` for the whole catalog.
            Pass :meth:`ColdStartSplit.candidate_pool` to rank cold items among cold items, as
            :func:`~coldstart_peft.evaluation.full_pool.evaluate_baseline_full_pool` does.

    Returns:
        ``{"n_cases", "n_items", "retrieval": summary, "ranks": {"better", "tied"}, "rerank": summary
        (with a reranker), "seconds": {...}}``; each summary maps ``"recall@10"``, ``"ndcg@10"``... to
        ``{"mean", "low", "high"}`` (95% bootstrap interval over users); ``ranks`` holds, per case,
        the retrieval's :func:`~coldstart_peft.evaluation.full_pool.pool_ranks` as lists, for paired
        comparisons (:func:`~coldstart_peft.evaluation.metrics.paired_bootstrap`).

    Example:
        >>> report = evaluate_full_catalog(scorer, cold_user_split(load_dataset("beauty")), max_cases=1000)
        >>> report["retrieval"]["recall@10"]["mean"]
    """
    if which not in ("valid", "test"):
        raise ValueError(f"which must be 'valid' or 'test', not {which!r}")
    records: list[CaseRecord] = (split.valid if which == "valid" else split.test)[:max_cases]
    if not records:
        raise ValueError(f"the split has no {which} cases to evaluate")
    serializer = serializer or TextSerializer()
    dataset = split.dataset
    seconds: dict[str, float] = {}
    if index is None:
        started = time.perf_counter()
        index = ItemIndex(encoder, "evaluation", progress=progress)
        index.add({i: serializer.item(dataset.items[i]) for i in (items if items is not None else dataset.items)})
        seconds["encode_catalog"] = time.perf_counter() - started
    started = time.perf_counter()
    user_texts = [
        serializer.user([dataset.items[i] for i in r.context], attributes=dataset.user_attributes.get(r.user_id))
        for r in records
    ]
    users = encoder.encode(user_texts, progress=progress)
    seconds["encode_users"] = time.perf_counter() - started
    fitted = getattr(encoder, "priors", None) if priors else None
    prior = CatalogPrior(fitted, index, {i: serializer.item(dataset.items[i]) for i in index.ids}) if fitted else None
    pool = index.ids

    started = time.perf_counter()
    n = len(records)
    better, tied = np.zeros(n, dtype=np.int64), np.zeros(n, dtype=np.int64)
    candidates: list[list[int] | None] = [None] * n
    for start in range(0, n, batch_size):
        stop = min(start + batch_size, n)
        scores = index.scores(users[start:stop])
        if prior is not None:
            scores += prior.scores(user_texts[start:stop], [r.context for r in records[start:stop]])
        batch = records[start:stop]
        if not exclude_seen:  # nothing known to leave out: only the targets are read
            batch = [CaseRecord(r.user_id, [], r.target, [], r.segment, r.domain) for r in batch]
        better[start:stop], tied[start:stop] = pool_ranks(scores, pool, batch)
        if reranker is not None:
            top = torch.topk(scores, min(n_candidates, scores.shape[1]), dim=1).indices
            for offset in range(stop - start):
                candidates[start + offset] = top[offset].tolist()
    seconds["retrieve"] = time.perf_counter() - started
    report = {
        "n_cases": n,
        "n_items": len(index),
        "priors": list(prior.priors.features) if prior is not None else [],
        "retrieval": full_pool_summary(better, tied, ks, seed=seed),
        "ranks": {"better": better.tolist(), "tied": tied.tolist()},
    }
    if reranker is not None:
        started = time.perf_counter()
        rerank_better, rerank_tied, reranked = _rerank(
            reranker, index, records, user_texts, candidates, better, tied, dataset.items, serializer, progress
        )
        seconds["rerank"] = time.perf_counter() - started
        report["rerank"] = full_pool_summary(rerank_better, rerank_tied, ks, seed=seed)
        report["reranked_cases"] = reranked
    report["seconds"] = {k: round(v, 2) for k, v in seconds.items()}
    return report


def _rerank(reranker, index, records, user_texts, candidates, better, tied, items, serializer, progress, users_per_call=8):
    """Ranks after reranking each user's candidates.

    Only users whose target is among their candidates are scored: for the others the target
    stays below every candidate, at its retrieval rank, whatever the reranker says.
    """
    rerank_better, rerank_tied = better.copy(), tied.copy()
    todo = [j for j, r in enumerate(records) if index.row(r.target) in candidates[j]]
    bar = tqdm(total=len(todo), desc="reranking", unit="user", disable=not progress)
    for start in range(0, len(todo), users_per_call):
        chunk = todo[start : start + users_per_call]
        pairs_users = [user_texts[j] for j in chunk for _ in candidates[j]]
        pairs_items = [items[index.item_id(row)] for j in chunk for row in candidates[j]]
        flat = rerank_scores(reranker, pairs_users, [serializer.item(i) for i in pairs_items], [i.domain for i in pairs_items],
                             context_ids=[records[j].context for j in chunk for _ in candidates[j]],
                             item_ids=[i.item_id for i in pairs_items])  # fmt: skip
        offset = 0
        for j in chunk:
            scores = flat[offset : offset + len(candidates[j])]
            offset += len(candidates[j])
            positive = scores[candidates[j].index(index.row(records[j].target))]
            rerank_better[j] = int((scores > positive).sum())
            rerank_tied[j] = int((scores == positive).sum()) - 1
        bar.update(len(chunk))
    bar.close()
    return rerank_better, rerank_tied, len(todo)
