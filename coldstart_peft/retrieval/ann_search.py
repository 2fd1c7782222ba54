"""Top-n search of an :class:`~coldstart_peft.retrieval.index.ItemIndex` through its FAISS searcher.

FAISS proposes candidates by inner product; every candidate is then scored exactly from the
index's float32 rows, so scores match exact search item for item. Rows FAISS does not hold
yet (items added or re-encoded since the build) are always scored exactly, so a new item is
retrievable the moment it is added.

A per-row ``bias`` (a user's priors) cannot be folded into the FAISS vectors: it differs per
user, and co-occurrence and lexical scores are not inner products of a fixed item vector.
So the top rows by bias join the candidates, and :func:`~coldstart_peft.retrieval.ann.needs_more`
decides whether the candidates provably hold the best ``n`` totals; if not, more are fetched,
and in the end the allowed rows are scanned exactly.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import TYPE_CHECKING

import torch

from coldstart_peft.retrieval.ann import FaissSearcher, needs_more

if TYPE_CHECKING:  # index.py imports this module
    from coldstart_peft.retrieval.index import ItemIndex

OVERSAMPLE = 2
"""Candidates fetched from FAISS per wanted result, before exact rescoring."""

GROWTH = 4
"""How much the candidate count grows when the bias bound says candidates may be missing."""

EXACT_FRACTION = 0.25
"""Once the candidates would be this share of the allowed rows, an exact scan of them is as cheap."""


def allowed_rows(index: ItemIndex, exclude: Collection[str], within: torch.Tensor | None) -> torch.Tensor:
    """A boolean mask of the rows a search may return: ``within`` minus ``exclude``."""
    allowed = torch.ones(len(index), dtype=torch.bool) if within is None else within.clone()
    rows = [index.row(i) for i in exclude if i in index]
    if rows:
        allowed[torch.tensor(rows)] = False
    return allowed


def exact_rows(index: ItemIndex, query: torch.Tensor, rows: torch.Tensor, bias: torch.Tensor | None, n: int):
    """The ``n`` best of ``rows`` by exact score: ``(scores, rows)``, best first."""
    totals = index.row_scores(query, rows)
    if bias is not None:
        totals = totals + bias[rows]
    values, order = torch.topk(totals, min(n, len(rows)))
    return values, rows[order]


def search_ann(
    index: ItemIndex, searcher: FaissSearcher, query: torch.Tensor, n: int, exclude: Collection[str] = (),
    within: torch.Tensor | None = None, bias: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
    """The ``n`` best allowed rows for one query: ``(scores, rows)``, best first.

    Args:
        index: the item index (its rows are the ground truth for every score).
        searcher: FAISS over the index's first ``searcher.rows`` rows.
        query: one query embedding.
        n: how many rows to return (fewer when fewer are allowed).
        exclude: item ids never to return.
        within: optional boolean row mask restricting the candidates.
        bias: optional per-row scores added before ranking.
    """
    query = query.to(torch.float32)
    held = searcher.rows
    excluded = [index.row(i) for i in exclude if i in index]
    if within is None and not excluded and not searcher.dirty:
        # Nothing filtered: no O(items) masks per query, so latency stays that of FAISS.
        allowed, allowed_count, faiss_count, faiss_mask = None, len(index), held, None
        fresh = torch.arange(held, len(index))
    else:
        allowed = allowed_rows(index, exclude, within)
        allowed_count = int(allowed.sum())
        fresh = torch.arange(held, len(index))
        if searcher.dirty:
            fresh = torch.cat([fresh, torch.tensor(sorted(searcher.dirty), dtype=torch.long)])
        fresh = fresh[allowed[fresh]]
        in_faiss = allowed[:held].clone()
        if searcher.dirty:
            in_faiss[torch.tensor(sorted(searcher.dirty))] = False
        faiss_count = int(in_faiss.sum())
        # A filter costs FAISS a bit test per scanned vector, so pass none when every row is allowed.
        faiss_mask = None if faiss_count == held else in_faiss.numpy()
    n = min(n, allowed_count)
    if n == 0:
        return torch.empty(0), torch.empty(0, dtype=torch.long)
    candidates = OVERSAMPLE * n
    while candidates < EXACT_FRACTION * allowed_count:
        _, found = searcher.search(query[None].numpy(), candidates, faiss_mask)
        got = torch.from_numpy(found[0][found[0] >= 0]).long()
        if len(got) < min(candidates, faiss_count):
            break  # the scanned cells hold too few allowed rows: only a scan is sure to find n
        pool = [got, fresh]
        if bias is not None:
            top_bias = torch.topk(bias if allowed is None else bias.masked_fill(~allowed, float("-inf")), candidates)
            pool.append(top_bias.indices)
        rows = torch.unique(torch.cat(pool))
        values, best = exact_rows(index, query, rows, bias, n)
        exhausted = len(got) < candidates  # FAISS returned every allowed row it holds
        if bias is None or exhausted or len(got) == 0:
            return values, best
        worst_retrieved = float(index.row_scores(query, got).min())
        if not needs_more(values, n, worst_retrieved, float(top_bias.values[-1])):
            return values, best
        candidates *= GROWTH
    if allowed is not None:
        return exact_rows(index, query, allowed.nonzero().flatten(), bias, n)
    totals = index.scores(query)  # every row: one matrix product, without gathering a copy
    return torch.topk(totals if bias is None else totals + bias, n)


def search_ann_batch(index: ItemIndex, searcher: FaissSearcher, queries: torch.Tensor, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``n`` best rows for each of several queries, without filters or bias: ``(scores, rows)``, ``(m, n)``.

    A missing result (fewer than ``n`` rows found) has score ``-inf`` and row ``-1``.
    """
    queries = queries.to(torch.float32)
    held = searcher.rows
    mask = None
    if searcher.dirty:
        mask = torch.ones(held, dtype=torch.bool)
        mask[torch.tensor(sorted(searcher.dirty))] = False
        mask = mask.numpy()
    _, found = searcher.search(queries.numpy(), OVERSAMPLE * n, mask)
    rows = torch.from_numpy(found).long()
    valid = rows >= 0
    scores = torch.einsum("mcd,md->mc", index.embeddings[rows.clamp(min=0)], queries)
    scores.masked_fill_(~valid, float("-inf"))
    fresh = torch.arange(held, len(index))
    if searcher.dirty:
        fresh = torch.cat([fresh, torch.tensor(sorted(searcher.dirty), dtype=torch.long)])
    if len(fresh):
        # One matrix product for the rows FAISS lacks, rather than a copy of them per query.
        scores = torch.cat([scores, queries @ index.embeddings[fresh].T], dim=1)
        rows = torch.cat([rows, fresh.expand(len(queries), -1)], dim=1)
    scores = scores * index.scale + index.offset
    values, order = torch.topk(scores, min(n, scores.shape[1]), dim=1)
    picked = rows.gather(1, order)
    picked.masked_fill_(~torch.isfinite(values), -1)
    return values, picked
