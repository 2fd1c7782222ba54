"""Baselines that need no fine-tuning, scored through the same metrics as trained scorers.

Baselines read item ids (``RankingCase.candidate_ids`` and ``context_ids``, which
:meth:`ColdStartSplit.ranking_cases` fills), because popularity and TF-IDF are properties
of catalog items, not of one rendering of their text.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections import Counter, defaultdict
from collections.abc import Sequence

import numpy as np
import torch
from sklearn.feature_extraction.text import TfidfVectorizer

from coldstart_peft.data.splits import ColdStartSplit
from coldstart_peft.errors import DataError, UnknownNameError
from coldstart_peft.evaluation.ranking import metrics_from_scores, segment_report
from coldstart_peft.examples import RankingCase

HYBRID_LAMBDAS = (0.0, 0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 1.0)
"""Grid searched for the hybrid's popularity weight λ on validation users."""
COOCCURRENCE_MUS = (0.0, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0)
"""Grid searched for the co-occurrence weight μ of ``hybrid+cooc``."""


def _ids(case: RankingCase) -> list[str]:
    if case.candidate_ids is None:
        raise DataError("this baseline needs item ids; build cases with ColdStartSplit.ranking_cases()")
    return case.candidate_ids


class Baseline:
    """A scorer of ranking cases that is fitted on a split's training side, never on test users."""

    name = "baseline"

    def fit(self, split: ColdStartSplit) -> Baseline:
        """Learn whatever the baseline needs from ``split``; return ``self``."""
        return self

    def score_case(self, case: RankingCase) -> np.ndarray:
        """Return one score per candidate of ``case`` (higher means more relevant)."""
        raise NotImplementedError

    def score_cases(self, cases: Sequence[RankingCase]) -> list[np.ndarray]:
        """Score many cases; baselines with batched models override this."""
        return [self.score_case(case) for case in cases]

    def score_pool(self, cases: Sequence[RankingCase], item_ids: Sequence[str], item_texts: Sequence[str]) -> np.ndarray:
        """Score every item of a pool for each case's user: ``(cases, items)``, for full-catalog ranking.

        The default gives each case the whole pool as its candidates and calls
        :meth:`score_cases`, so any baseline ranks a catalog; baselines override it with one
        vectorised product where they can (the figures must not change, only the time).

        Args:
            cases: the users (their own candidates are ignored).
            item_ids: the pool's item ids, one column each.
            item_texts: the pool's item texts, aligned with ``item_ids``.
        """
        pooled = [dataclasses.replace(c, candidate_ids=list(item_ids), candidate_texts=list(item_texts), target=0)
                  for c in cases]  # fmt: skip
        return np.stack(self.score_cases(pooled)) if pooled else np.zeros((0, len(item_ids)))


class PopularityBaseline(Baseline):
    """Score = how often training users interacted with the item (0 for unseen items, tied)."""

    name = "popularity"

    def fit(self, split: ColdStartSplit) -> PopularityBaseline:
        self.counts = split.popularity()
        return self

    def score_case(self, case: RankingCase) -> np.ndarray:
        return np.array([self.counts.get(i, 0) for i in _ids(case)], dtype=np.float64)

    def score_pool(self, cases, item_ids, item_texts) -> np.ndarray:
        row = np.array([self.counts.get(i, 0) for i in item_ids], dtype=np.float64)
        return np.tile(row, (len(cases), 1))


class TfidfBaseline(Baseline):
    """Cosine similarity between TF-IDF vectors of the context's titles and each candidate's text.

    The vectorizer is fitted on the catalog's item text. On Beauty cold-user (K=3, seed 0)
    title+brand+category candidates gave NDCG@10 0.305 (hybrid 0.378) against 0.296 (0.363)
    for titles only; sublinear tf changed neither by more than 0.003.

    Args:
        candidate_field: ``"full"`` (title, brand, category path) or ``"title"``.
        max_features: vocabulary cap of the vectorizer.
    """

    name = "tfidf"

    def __init__(self, candidate_field: str = "full", max_features: int | None = 50_000):
        self.candidate_field, self.max_features = candidate_field, max_features

    def _text(self, item) -> str:
        if self.candidate_field == "title":
            return item.title
        return " ".join([item.title, item.brand or "", " ".join(item.categories[1:])])

    def fit(self, split: ColdStartSplit) -> TfidfBaseline:
        # Fitting on catalog text, not interactions, leaks nothing about test users.
        items = split.dataset.items
        self.index = {item_id: row for row, item_id in enumerate(items)}
        self.titles = {item_id: item.title for item_id, item in items.items()}
        self.vectorizer = TfidfVectorizer(max_features=self.max_features)
        self.matrix = self.vectorizer.fit_transform([self._text(item) for item in items.values()])
        return self

    def _query(self, case: RankingCase) -> str:
        context = case.context_ids
        return " ".join(self.titles[i] for i in context) if context is not None else case.user_text

    def score_case(self, case: RankingCase) -> np.ndarray:
        vector = self.vectorizer.transform([self._query(case)])
        rows = [self.index[i] for i in _ids(case)]
        return np.asarray((self.matrix[rows] @ vector.T).todense()).ravel()

    def score_pool(self, cases, item_ids, item_texts) -> np.ndarray:
        queries = self.vectorizer.transform([self._query(c) for c in cases])
        return (queries @ self.matrix[[self.index[i] for i in item_ids]].T).toarray()


class HybridBaseline(Baseline):
    """TF-IDF similarity + λ·log(1 + popularity), λ chosen by validation NDCG@10.

    Args:
        lambdas: the grid searched; a fixed ``lam`` skips the search.
        lam: use this λ instead of tuning.
        valid_cases: validation cases; by default the split's validation users.
    """

    name = "hybrid"

    def __init__(self, lambdas: Sequence[float] = HYBRID_LAMBDAS, lam: float | None = None, valid_cases=None):
        self.lambdas, self.lam, self.valid_cases = tuple(lambdas), lam, valid_cases
        self.tfidf, self.popularity = TfidfBaseline(), PopularityBaseline()
        self.validation: dict[float, float] = {}

    def fit(self, split: ColdStartSplit) -> HybridBaseline:
        self.tfidf.fit(split)
        self.popularity.fit(split)
        if self.lam is None:
            cases = self.valid_cases if self.valid_cases is not None else split.ranking_cases("valid")
            parts = [(self.tfidf.score_case(c), np.log1p(self.popularity.score_case(c))) for c in cases]
            for lam in self.lambdas:
                scores = [text + lam * pop for text, pop in parts]
                self.validation[lam] = float(metrics_from_scores(scores, cases, ks=(10,))["ndcg@10"].mean())
            self.lam = max(self.validation, key=self.validation.get)
        return self

    def score_case(self, case: RankingCase) -> np.ndarray:
        return self.tfidf.score_case(case) + self.lam * np.log1p(self.popularity.score_case(case))

    def score_pool(self, cases, item_ids, item_texts) -> np.ndarray:
        pop = np.log1p(self.popularity.score_pool(cases, item_ids, item_texts))
        return self.tfidf.score_pool(cases, item_ids, item_texts) + self.lam * pop


class CooccurrenceBaseline(Baseline):
    """Item-to-item co-occurrence: log(1 + how often training users bought the candidate near a context item).

    "People who bought this also bought": a pair counts once per training user who has the two
    items within ``window`` positions of each other (either order). Cold users are new but their
    clicked items are not, so this collaborative signal is available to them; cold items get 0.

    Args:
        window: positions apart that still count as bought together.
    """

    name = "cooccurrence"

    def __init__(self, window: int = 3):
        self.window = window

    def fit(self, split: ColdStartSplit) -> CooccurrenceBaseline:
        self.counts: dict[str, Counter] = defaultdict(Counter)
        for seq in split.train_sequences().values():
            for t, target in enumerate(seq):
                for other in seq[max(0, t - self.window) : t]:
                    if other != target:
                        self.counts[other][target] += 1
                        self.counts[target][other] += 1
        return self

    def score_case(self, case: RankingCase) -> np.ndarray:
        context = case.context_ids or []
        return np.log1p([sum(self.counts[c][i] for c in context if c in self.counts) for i in _ids(case)])

    def score_pool(self, cases, item_ids, item_texts) -> np.ndarray:
        # Walk each context item's few neighbours rather than every pool item.
        column = {item: j for j, item in enumerate(item_ids)}
        out = np.zeros((len(cases), len(item_ids)), dtype=np.float64)
        for row, case in enumerate(cases):
            for c in case.context_ids or []:
                for item, count in self.counts.get(c, {}).items():
                    if item in column:
                        out[row, column[item]] += count
        return np.log1p(out)


class HybridCooccurrenceBaseline(Baseline):
    """TF-IDF + λ·log(1 + popularity) + μ·log(1 + co-occurrence), λ and μ tuned together on validation users.

    What the fused scorers' popularity, lexical and co-occurrence priors know, with no language
    model; ``hybrid+nbr`` (:mod:`coldstart_peft.evaluation.neighbour_text`) adds the fourth,
    neighbour text, and is the row a scorer with the default priors must beat.

    Args:
        lambdas: popularity weights searched.
        mus: co-occurrence weights searched.
        valid_cases: validation cases; by default the split's validation users.
    """

    name = "hybrid+cooc"

    def __init__(self, lambdas: Sequence[float] = HYBRID_LAMBDAS, mus: Sequence[float] = COOCCURRENCE_MUS, valid_cases=None):
        self.lambdas, self.mus, self.valid_cases = tuple(lambdas), tuple(mus), valid_cases
        self.tfidf, self.popularity, self.cooccurrence = TfidfBaseline(), PopularityBaseline(), CooccurrenceBaseline()
        self.validation: dict[tuple[float, float], float] = {}

    def fit(self, split: ColdStartSplit) -> HybridCooccurrenceBaseline:
        for part in (self.tfidf, self.popularity, self.cooccurrence):
            part.fit(split)
        cases = self.valid_cases if self.valid_cases is not None else split.ranking_cases("valid")
        parts = [self._parts(c) for c in cases]
        for lam, mu in itertools.product(self.lambdas, self.mus):
            scores = [text + lam * pop + mu * co for text, pop, co in parts]
            self.validation[(lam, mu)] = float(metrics_from_scores(scores, cases, ks=(10,))["ndcg@10"].mean())
        self.lam, self.mu = max(self.validation, key=self.validation.get)
        return self

    def _parts(self, case: RankingCase) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        pop = np.log1p(self.popularity.score_case(case))
        return self.tfidf.score_case(case), pop, self.cooccurrence.score_case(case)

    def score_case(self, case: RankingCase) -> np.ndarray:
        text, pop, co = self._parts(case)
        return text + self.lam * pop + self.mu * co

    def score_pool(self, cases, item_ids, item_texts) -> np.ndarray:
        pop = np.log1p(self.popularity.score_pool(cases, item_ids, item_texts))
        text = self.tfidf.score_pool(cases, item_ids, item_texts)
        return text + self.lam * pop + self.mu * self.cooccurrence.score_pool(cases, item_ids, item_texts)


class ZeroShotBaseline(Baseline):
    """Cosine between mean-pooled backbone embeddings of the user text and each candidate's text.

    Args:
        backbone: model name or path; ``None`` for the bundled MiniLM.
        batch_size: texts per forward pass.
        max_length: wordpiece cap per text.
        bf16: run under bfloat16 autocast (about twice as fast on CPU; rankings barely move).
    """

    name = "zero-shot"

    def __init__(self, backbone: str | None = None, batch_size: int = 128, max_length: int = 128, bf16: bool = True):
        self.backbone, self.batch_size, self.max_length, self.bf16 = backbone, batch_size, max_length, bf16
        self.cache: dict[str, np.ndarray] = {}

    def fit(self, split: ColdStartSplit | None = None) -> ZeroShotBaseline:
        from coldstart_peft.backbone import load_backbone, load_tokenizer

        self.model, self.tokenizer = load_backbone(self.backbone), load_tokenizer(self.backbone)
        return self

    @torch.no_grad()
    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Mean-pooled, L2-normalized embeddings of ``texts``, batched."""
        out = []
        for start in range(0, len(texts), self.batch_size):
            batch = self.tokenizer(list(texts[start : start + self.batch_size]), padding=True, truncation=True,
                                   max_length=self.max_length, return_tensors="pt")  # fmt: skip
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16):
                hidden = self.model(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(torch.float32)
            pooled = (hidden.float() * mask).sum(1) / mask.sum(1).clamp(min=1.0)
            out.append(torch.nn.functional.normalize(pooled, dim=-1).numpy())
        return np.concatenate(out) if out else np.zeros((0, 1), dtype=np.float32)

    def prepare(self, cases: Sequence[RankingCase]) -> None:
        """Embed every distinct candidate of ``cases`` once (item embeddings are cached by id or text)."""
        pending: dict[str, str] = {}
        for case in cases:
            for key, text in zip(case.candidate_ids or case.candidate_texts, case.candidate_texts):
                if key not in self.cache:
                    pending.setdefault(key, text)
        # Sorting by length keeps padding (and wasted compute) low within each batch.
        keys = sorted(pending, key=lambda k: len(pending[k]))
        self.cache.update(zip(keys, self.embed([pending[k] for k in keys])))

    def score_case(self, case: RankingCase) -> np.ndarray:
        return self.score_cases([case])[0]

    def score_cases(self, cases: Sequence[RankingCase]) -> list[np.ndarray]:
        self.prepare(cases)
        users = self.embed([case.user_text for case in cases])
        return [np.stack([self.cache[k] for k in (c.candidate_ids or c.candidate_texts)]) @ u for c, u in zip(cases, users)]

    def score_pool(self, cases, item_ids, item_texts) -> np.ndarray:
        pending = {i: t for i, t in zip(item_ids, item_texts) if i not in self.cache}
        keys = sorted(pending, key=lambda k: len(pending[k]))  # the item cache is shared with score_cases
        self.cache.update(zip(keys, self.embed([pending[k] for k in keys])))
        items = np.stack([self.cache[i] for i in item_ids])
        return self.embed([case.user_text for case in cases]) @ items.T


# The peers subclass Baseline, so they are imported once it exists (the package imports this module first).
from coldstart_peft.evaluation.peers import BM25Baseline, ItemKNNBaseline  # noqa: E402
from coldstart_peft.evaluation.neighbour_text import HybridNeighbourBaseline, NeighbourTextBaseline  # noqa: E402

BASELINES = {"popularity": PopularityBaseline, "tfidf": TfidfBaseline, "hybrid": HybridBaseline,
             "cooccurrence": CooccurrenceBaseline, "hybrid+cooc": HybridCooccurrenceBaseline, "zero-shot": ZeroShotBaseline,
             "item-knn": ItemKNNBaseline, "bm25": BM25Baseline, "neighbour-text": NeighbourTextBaseline,
             "hybrid+nbr": HybridNeighbourBaseline}  # fmt: skip
"""Baseline name -> class; every class builds with no arguments."""


def make_baseline(name: str, **options) -> Baseline:
    """Build a baseline by name (any key of :data:`BASELINES`, e.g. ``hybrid``, ``item-knn``, ``bm25``).

    Raises:
        UnknownNameError: the name is not a baseline.
    """
    if name not in BASELINES:
        raise UnknownNameError("baseline", name, BASELINES)
    return BASELINES[name](**options)


def evaluate_baseline(baseline: Baseline, cases: Sequence[RankingCase], seed: int = 0) -> dict:
    """Score ``cases`` with a fitted baseline; report overall, per segment and per domain.

    Example:
        >>> split = cold_user_split(load_dataset("beauty"), k=3, max_test_users=1000)
        >>> report = evaluate_baseline(make_baseline("hybrid").fit(split), split.ranking_cases("test"))
        >>> report["overall"]["ndcg@10"]
    """
    if not cases:
        raise DataError("no ranking cases to evaluate; is max_test_users 0 or the split empty?")
    return segment_report(baseline.score_cases(cases), cases, seed=seed)
