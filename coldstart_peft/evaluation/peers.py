"""Peer baselines a recommender-systems reviewer expects next to ours: item-kNN and BM25.

Both read item ids (``RankingCase.candidate_ids`` and ``context_ids``) and score a batch of
cases with sparse matrix products, so a case that ranks the whole catalog (about 12k items on
Beauty) costs one row of a product, not a Python loop over candidates.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp

from coldstart_peft.data.neighbours import buyer_matrix
from coldstart_peft.data.splits import ColdStartSplit
from coldstart_peft.errors import ConfigError, DataError, MissingDependencyError
from coldstart_peft.evaluation.baselines import Baseline, TfidfBaseline
from coldstart_peft.evaluation.ranking import metrics_from_scores
from coldstart_peft.examples import RankingCase

_BATCH = 256
"""Cases whose score rows are densified together (256 x 12k float32 is about 12 MB)."""
KNN_KS = (50, 100, 200, 500, 1000)
"""Neighbour counts item-kNN searches on validation users."""
KNN_SHRINKS = (0.0, 10.0, 100.0, 1000.0)
"""Shrink terms item-kNN searches on validation users."""


def _candidate_ids(case: RankingCase) -> list[str]:
    if case.candidate_ids is None:
        raise DataError("this baseline needs item ids; build cases with ColdStartSplit.ranking_cases()")
    return case.candidate_ids


def _gather(rows: np.ndarray, index: dict[str, int], ids: Sequence[str], missing: float) -> np.ndarray:
    """Pick the entries of ``rows`` (one row, or a matrix's columns) for ``ids``; ids not in ``index`` get ``missing``."""
    columns = np.fromiter((index.get(i, -1) for i in ids), dtype=np.int64, count=len(ids))
    out = rows[..., np.maximum(columns, 0)].astype(np.float64)
    out[..., columns < 0] = missing
    return out


def top_k_per_row(matrix: sp.csr_matrix, k: int) -> sp.csr_matrix:
    """Keep the ``k`` largest entries of each row of a sparse matrix (ties broken by column order).

    Args:
        matrix: a CSR matrix with non-negative entries.
        k: entries kept per row.

    Returns:
        A CSR matrix of the same shape with at most ``k`` entries per row.
    """
    matrix = matrix.tocsr()
    rows, cols, vals = [], [], []
    for r in range(matrix.shape[0]):
        start, end = matrix.indptr[r], matrix.indptr[r + 1]
        if start == end:
            continue
        data, index = matrix.data[start:end], matrix.indices[start:end]
        if end - start > k:
            # A stable sort on -data keeps the lowest column first among ties, so the choice is reproducible.
            keep = np.argsort(-data, kind="stable")[:k]
            data, index = data[keep], index[keep]
        rows.append(np.full(len(data), r))
        cols.append(index)
        vals.append(data)
    if not rows:
        return sp.csr_matrix(matrix.shape, dtype=matrix.dtype)
    return sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=matrix.shape)


class ItemKNNBaseline(Baseline):
    """Item-based collaborative filtering: score = summed cosine of the candidate to the context items.

    The classic item-kNN peer (Sarwar et al. 2001; top-N form of Deshpande & Karypis 2004):
    each training item is a binary vector over training users; the similarity of items i and j
    is ``|U_i ∩ U_j| / (sqrt(|U_i| |U_j|) + shrink)``; each item keeps its ``k`` most similar
    items; a candidate's score is the sum of its similarities in the context items' neighbour
    lists. Items no training user bought score 0 (tied), as do candidates outside every list.

    ``k`` and ``shrink`` left ``None`` are chosen by NDCG@10 on validation users over
    :data:`KNN_KS` x :data:`KNN_SHRINKS` (the ranges Dacrema et al. 2019 tune); without
    validation cases they fall back to ``k=100``, ``shrink=0``.

    Args:
        k: neighbours kept per item; ``None`` tunes it.
        shrink: added to the cosine's denominator, damping similarities of rarely bought items;
            ``None`` tunes it.
        ks: the neighbour counts searched.
        shrinks: the shrink terms searched.
        valid_cases: validation cases; by default the split's validation users.
    """

    name = "item-knn"

    def __init__(self, k: int | None = None, shrink: float | None = None, ks: Sequence[int] = KNN_KS,
                 shrinks: Sequence[float] = KNN_SHRINKS, valid_cases: Sequence[RankingCase] | None = None):  # fmt: skip
        if (k is not None and k < 1) or (shrink is not None and shrink < 0) or min(ks) < 1 or min(shrinks) < 0:
            raise ConfigError(f"item-knn needs k >= 1 and shrink >= 0, not k={k}, shrink={shrink}, ks={ks}, shrinks={shrinks}")
        self.k, self.shrink, self.ks, self.shrinks, self.valid_cases = k, shrink, tuple(ks), tuple(shrinks), valid_cases
        self.validation: dict[tuple[int, float], float] = {}

    def fit(self, split: ColdStartSplit) -> ItemKNNBaseline:
        """Build the item-item neighbour lists from the split's training sequences (tuning k, shrink on validation)."""
        self.items, users = buyer_matrix(split.train_sequences())
        self.index = {item: n for n, item in enumerate(self.items)}
        overlap = (users.T @ users).tocoo()
        off_diagonal = overlap.row != overlap.col
        self._overlap = (overlap.row[off_diagonal], overlap.col[off_diagonal], overlap.data[off_diagonal])
        self._norms = np.sqrt(np.asarray(users.sum(axis=0)).ravel())
        ks = (self.k,) if self.k is not None else self.ks
        shrinks = (self.shrink,) if self.shrink is not None else self.shrinks
        cases = self.valid_cases if self.valid_cases is not None else split.ranking_cases("valid")
        if len(ks) * len(shrinks) > 1 and cases:
            for shrink in shrinks:
                similarity = self._similarity(shrink)
                for k in ks:
                    self.neighbours = top_k_per_row(similarity, k)
                    self.validation[(k, shrink)] = float(metrics_from_scores(self.score_cases(cases), cases, ks=(10,))["ndcg@10"].mean())
            self.k, self.shrink = max(self.validation, key=self.validation.get)
        else:
            self.k = self.k if self.k is not None else 100
            self.shrink = self.shrink if self.shrink is not None else 0.0
        self.neighbours = top_k_per_row(self._similarity(self.shrink), self.k)
        return self

    def _similarity(self, shrink: float) -> sp.csr_matrix:
        rows, cols, overlap = self._overlap
        cosine = overlap / (self._norms[rows] * self._norms[cols] + shrink)
        return sp.csr_matrix((cosine.astype(np.float32), (rows, cols)), shape=(len(self.items), len(self.items)))

    def _contexts(self, cases: Sequence[RankingCase]) -> sp.csr_matrix:
        rows, cols = [], []
        for r, case in enumerate(cases):
            for item in dict.fromkeys(case.context_ids or []):
                if item in self.index:
                    rows.append(r)
                    cols.append(self.index[item])
        return sp.csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=(len(cases), len(self.items)))

    def score_case(self, case: RankingCase) -> np.ndarray:
        """Return one score per candidate of ``case`` (higher means more relevant)."""
        return self.score_cases([case])[0]

    def score_cases(self, cases: Sequence[RankingCase]) -> list[np.ndarray]:
        """Score many cases with one sparse product per batch of cases."""
        out = []
        for start in range(0, len(cases), _BATCH):
            batch = cases[start : start + _BATCH]
            dense = (self._contexts(batch) @ self.neighbours).toarray()
            out += [_gather(row, self.index, _candidate_ids(c), 0.0) for row, c in zip(dense, batch)]
        return out

    def score_pool(self, cases: Sequence[RankingCase], item_ids: Sequence[str], item_texts: Sequence[str] = ()) -> np.ndarray:
        """Score every item of ``item_ids`` for each case's context: an array (cases, items)."""
        blocks = [_gather((self._contexts(cases[s : s + _BATCH]) @ self.neighbours).toarray(), self.index, item_ids, 0.0)
                  for s in range(0, len(cases), _BATCH)]  # fmt: skip
        return np.concatenate(blocks) if blocks else np.zeros((0, len(item_ids)))


class BM25Baseline(Baseline):
    """BM25 between the context items' titles and each candidate's item text (``bm25s``, Lucene variant).

    The documents are the catalog's items with the text :class:`TfidfBaseline` uses (title,
    brand, category path); the query is the context's titles, as for TF-IDF, so the two
    lexical baselines differ only in the weighting.

    Args:
        k1: term-frequency saturation.
        b: document-length normalisation.
        stopwords: ``"english"`` or ``None``; passed to ``bm25s.tokenize``.
        candidate_field: ``"full"`` (title, brand, category path) or ``"title"``, as for TF-IDF.
    """

    name = "bm25"

    def __init__(self, k1: float = 1.5, b: float = 0.75, stopwords: str | None = "english", candidate_field: str = "full"):
        self.k1, self.b, self.stopwords, self.candidate_field = k1, b, stopwords, candidate_field

    def fit(self, split: ColdStartSplit) -> BM25Baseline:
        """Index the catalog's item text (no interactions, so nothing about test users)."""
        try:
            import bm25s
        except ImportError as exc:
            raise MissingDependencyError("the bm25 baseline needs bm25s; pip install bm25s") from exc
        items = split.dataset.items
        self.index = {item_id: row for row, item_id in enumerate(items)}
        self.titles = {item_id: item.title for item_id, item in items.items()}
        text = TfidfBaseline(candidate_field=self.candidate_field)._text  # one text choice for both lexical baselines
        corpus = bm25s.tokenize([text(item) for item in items.values()], stopwords=self.stopwords, show_progress=False)
        self.retriever = bm25s.BM25(k1=self.k1, b=self.b)
        self.retriever.index(corpus, show_progress=False)
        self.vocab = corpus.vocab
        return self

    def _query_scores(self, case: RankingCase) -> np.ndarray:
        import bm25s  # fit imported it already; kept out of module import so the CLI starts without it

        context = case.context_ids
        query = " ".join(self.titles.get(i, "") for i in context) if context is not None else case.user_text
        tokens = bm25s.tokenize([query], stopwords=self.stopwords, return_ids=False, show_progress=False)[0]
        known = [t for t in tokens if t in self.vocab]
        if not known:
            return np.zeros(len(self.index), dtype=np.float32)
        return self.retriever.get_scores(known)

    def score_case(self, case: RankingCase) -> np.ndarray:
        """Return one score per candidate of ``case`` (higher means more relevant)."""
        return _gather(self._query_scores(case), self.index, _candidate_ids(case), 0.0)

    def score_cases(self, cases: Sequence[RankingCase]) -> list[np.ndarray]:
        """Score many cases; each query is scored against the whole catalog once."""
        return [self.score_case(case) for case in cases]

    def score_pool(self, cases: Sequence[RankingCase], item_ids: Sequence[str], item_texts: Sequence[str] = ()) -> np.ndarray:
        """Score every item of ``item_ids`` (catalog items; others score 0) for each case: an array (cases, items)."""
        if not cases:
            return np.zeros((0, len(item_ids)))
        return _gather(np.stack([self._query_scores(c) for c in cases]), self.index, item_ids, 0.0)
