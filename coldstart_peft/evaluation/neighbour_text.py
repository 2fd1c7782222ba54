"""What a user's items are bought with, read as words: the no-language-model twin of the
``neighbour_text`` prior (:mod:`coldstart_peft.priors.model`).

A cold item has no co-occurrence of its own, but the user's context items do: the items
training users bought next to them describe what this user is likely to want next, and their
words reach an item nobody bought yet. A fine-tuned scorer whose priors use the feature must
be compared with ``hybrid+nbr``, not with TF-IDF or ``hybrid+cooc`` alone.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp
from sklearn.preprocessing import normalize

from coldstart_peft.data.splits import ColdStartSplit
from coldstart_peft.evaluation.baselines import (
    COOCCURRENCE_MUS, HYBRID_LAMBDAS, Baseline, CooccurrenceBaseline, HybridCooccurrenceBaseline, TfidfBaseline, _ids,
)  # fmt: skip
from coldstart_peft.evaluation.ranking import metrics_from_scores
from coldstart_peft.examples import RankingCase

NEIGHBOUR_NUS = (0.0, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0)
"""Grid searched for the neighbour-text weight ν of ``hybrid+nbr``."""


class NeighbourTextBaseline(Baseline):
    """Cosine of each candidate's TF-IDF row and the ``log(1 + count)``-weighted TF-IDF rows of the
    items training users bought within ``window`` positions of a context item.

    Args:
        window: positions apart that still count as bought together (as :class:`CooccurrenceBaseline`).
    """

    name = "neighbour-text"

    def __init__(self, window: int = 3):
        self.window = window

    def fit(self, split: ColdStartSplit) -> NeighbourTextBaseline:
        self.tfidf = TfidfBaseline().fit(split)
        counts = CooccurrenceBaseline(self.window).fit(split).counts
        index = self.tfidf.index
        rows, cols, vals = [], [], []
        for item, others in counts.items():
            for other, n in others.items():
                rows.append(index[item])
                cols.append(index[other])
                vals.append(np.log1p(n))
        n = len(index)
        self.neighbours = sp.csr_matrix((np.array(vals, dtype=np.float32), (rows, cols)), shape=(n, n))
        self.matrix = self.tfidf.matrix.astype(np.float32).tocsr()
        return self

    def profiles(self, cases: Sequence[RankingCase]) -> sp.csr_matrix:
        """Each case's neighbour profile over the TF-IDF vocabulary, rows L2-normalised (empty without neighbours)."""
        index = self.tfidf.index
        rows = [r for r, c in enumerate(cases) for i in c.context_ids or () if i in index]
        cols = [index[i] for c in cases for i in c.context_ids or () if i in index]
        context = sp.csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=(len(cases), len(index)))
        return normalize((context @ self.neighbours @ self.matrix).tocsr())

    def score_case(self, case: RankingCase) -> np.ndarray:
        return self.score_cases([case])[0]

    def score_cases(self, cases: Sequence[RankingCase]) -> list[np.ndarray]:
        profiles = self.profiles(cases)
        index = self.tfidf.index
        return [np.asarray((self.matrix[[index[i] for i in _ids(c)]] @ profiles[r].T).todense()).ravel()
                for r, c in enumerate(cases)]  # fmt: skip

    def score_pool(self, cases, item_ids, item_texts) -> np.ndarray:
        items = self.matrix[[self.tfidf.index[i] for i in item_ids]]
        return (self.profiles(cases) @ items.T).toarray()


class HybridNeighbourBaseline(HybridCooccurrenceBaseline):
    """``hybrid+cooc`` plus ν·neighbour text: everything the fused scorer's priors know with the
    ``neighbour_text`` feature on, and no language model.

    λ and μ are tuned as ``hybrid+cooc`` tunes them, then ν on the same validation users with
    them fixed (one coordinate step, where the joint grid would cost 9× as much).

    Args:
        nus: neighbour-text weights searched.
        lambdas, mus, valid_cases: as :class:`HybridCooccurrenceBaseline`.
    """

    name = "hybrid+nbr"

    def __init__(self, nus: Sequence[float] = NEIGHBOUR_NUS, lambdas: Sequence[float] = HYBRID_LAMBDAS,
                 mus: Sequence[float] = COOCCURRENCE_MUS, valid_cases=None):  # fmt: skip
        super().__init__(lambdas, mus, valid_cases)
        self.nus, self.nu = tuple(nus), 0.0
        self.neighbour_text = NeighbourTextBaseline()
        self.neighbour_validation: dict[float, float] = {}

    def fit(self, split: ColdStartSplit) -> HybridNeighbourBaseline:
        super().fit(split)
        self.neighbour_text.fit(split)
        cases = self.valid_cases if self.valid_cases is not None else split.ranking_cases("valid")
        fused, text = self._fused(cases), self.neighbour_text.score_cases(cases)
        for nu in self.nus:
            scores = [f + nu * t for f, t in zip(fused, text)]
            self.neighbour_validation[nu] = float(metrics_from_scores(scores, cases, ks=(10,))["ndcg@10"].mean())
        self.nu = max(self.neighbour_validation, key=self.neighbour_validation.get)
        return self

    def score_case(self, case: RankingCase) -> np.ndarray:
        return self.score_cases([case])[0]

    def _fused(self, cases: Sequence[RankingCase]) -> list[np.ndarray]:
        return [HybridCooccurrenceBaseline.score_case(self, c) for c in cases]

    def score_cases(self, cases: Sequence[RankingCase]) -> list[np.ndarray]:
        fused = self._fused(cases)
        return [f + self.nu * t for f, t in zip(fused, self.neighbour_text.score_cases(cases))]

    def score_pool(self, cases, item_ids, item_texts) -> np.ndarray:
        fused = super().score_pool(cases, item_ids, item_texts)
        return fused + self.nu * self.neighbour_text.score_pool(cases, item_ids, item_texts)
