"""Pair priors: what the TF-IDF + popularity hybrid and item-to-item co-occurrence know, as score features.

A fine-tuned encoder on a CPU budget sees a few thousand training users; it should not spend
them relearning exact word matches or which items are bought together. Fused into a scorer's
score as ``logit + w · features`` (``w`` learned with the encoder), these features carry that
knowledge from the start, and training pushes the encoder towards what they miss:

* ``lexical``: cosine between TF-IDF vectors of the user text and the item text, over the
  backbone's wordpieces; idf is fitted on the training item texts, so the table is one float
  per vocabulary entry and no vocabulary strings are stored.
* ``cooccurrence``: ``log(1 + n)``, n = how often training users bought the candidate within
  three positions of one of the user's context items (symmetric). Items are keyed by the first
  words of their title, the part of an item that the user text repeats, so the user text alone
  (no item ids) names the context items. An item never seen in training gets 0, the
  no-information value, exactly like the popularity prior.

The user text is read the way :class:`~coldstart_peft.data.text.TextSerializer` writes it
(``"<label>: title | title | title; <Label>: ..."``) and an item text's title is its first
``;``-separated part; a text in another shape simply yields no co-occurrence keys.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp
import torch

from coldstart_peft.examples import TrainGroup
from coldstart_peft.prior import text_key

FEATURES = ("lexical", "cooccurrence")
TITLE_WORDS = 8
"""Words of a title that key an item: history titles are cut to 12 words, item titles to 24."""

_HISTORY = re.compile(r"^[^:;|]{1,40}: (.*?)(?:; [A-Z][\w ]{0,20}: |$)", re.DOTALL)


def title_key(text: str) -> int | None:
    """The co-occurrence key of an item or history title: its first words, lowercased, hashed."""
    words = text.split(";", 1)[0].lower().split()[:TITLE_WORDS]
    return text_key(" ".join(words)) if words else None


def context_keys(user_text: str) -> list[int]:
    """Keys of the context items named in a user text (empty when it lists none)."""
    match = _HISTORY.match(user_text)
    if not match:
        return []
    return [k for k in (title_key(t) for t in match.group(1).split(" | ")) if k is not None]


class PairPrior:
    """Fitted tables and feature computation for :data:`FEATURES` (the enabled subset).

    The tables are CPU tensors that never follow the scorer to its device: every feature is
    computed on the CPU while a batch is collated. They are saved with the scorer's head
    weights (see :meth:`tables`).

    Args:
        tokenizer: the backbone's tokenizer (lexical features count its wordpieces).
        features: which of :data:`FEATURES` to compute, in that order.
    """

    TABLES = ("idf", "keys", "rows", "cols", "counts")

    def __init__(self, tokenizer, features: Sequence[str]):
        self.tokenizer = tokenizer
        self.features = tuple(f for f in FEATURES if f in features)
        self.idf = torch.zeros(len(tokenizer) if "lexical" in self.features else 0)
        # Upper triangle of the symmetric co-occurrence counts, over sorted title keys.
        self.keys = torch.zeros(0, dtype=torch.int64)
        self.rows = torch.zeros(0, dtype=torch.int32)
        self.cols = torch.zeros(0, dtype=torch.int32)
        self.counts = torch.zeros(0, dtype=torch.int32)
        self._matrix: sp.csr_matrix | None = None

    # -- fitting ---------------------------------------------------------------------------

    def fit(self, groups: Sequence[TrainGroup]) -> None:
        """Fit idf on the groups' distinct item texts and count co-occurrences of their positives."""
        if "lexical" in self.features:
            texts = list(dict.fromkeys(t for g in groups for t in g.item_texts))
            df = np.zeros(len(self.idf))
            for ids in self._token_ids(texts):
                df[np.unique(ids)] += 1
            self.idf = torch.tensor(np.log((1 + len(texts)) / (1 + df)) + 1, dtype=torch.float32)
        if "cooccurrence" in self.features:
            self._fit_cooccurrence(groups)

    def _fit_cooccurrence(self, groups: Sequence[TrainGroup]) -> None:
        pairs: Counter = Counter()
        for group in groups:
            positive = next((t for t, y in zip(group.item_texts, group.labels) if y > 0.5), None)
            target = title_key(positive) if positive is not None else None
            if target is None:
                continue
            for key in context_keys(group.user_text):
                if key != target:
                    pairs[(min(key, target), max(key, target))] += 1
        keys = sorted({k for pair in pairs for k in pair})
        index = {k: i for i, k in enumerate(keys)}
        self.keys = torch.tensor(keys, dtype=torch.int64)
        self.rows = torch.tensor([index[a] for a, _ in pairs], dtype=torch.int32)
        self.cols = torch.tensor([index[b] for _, b in pairs], dtype=torch.int32)
        self.counts = torch.tensor(list(pairs.values()), dtype=torch.int32)
        self._matrix = None

    def tables(self, prefix: str = "") -> dict[str, torch.Tensor]:
        """The fitted tables by name, as saved with an adapter."""
        return {prefix + name: getattr(self, name) for name in self.TABLES}

    def load_tables(self, state: dict[str, torch.Tensor], prefix: str) -> None:
        """Adopt saved tables whatever their size (it is the training catalog's, not fixed)."""
        for name in self.TABLES:
            setattr(self, name, state[prefix + name].detach().cpu().clone())
        self._matrix = None

    # -- features --------------------------------------------------------------------------

    def grid(self, user_texts: Sequence[str], item_texts: Sequence[str], subtract: np.ndarray | None = None) -> torch.Tensor:
        """Features of every (user, item) combination: ``[len(users), len(items), F]``.

        ``subtract``: co-occurrence counts to take out first (``[users, items]``), see :meth:`own_counts`.
        """
        parts = []
        if "lexical" in self.features:
            parts.append((self._tfidf(user_texts) @ self._tfidf(item_texts).T).toarray())
        if "cooccurrence" in self.features:
            counts = self._neighbours(user_texts)[:, self._item_columns(item_texts)].toarray()
            parts.append(np.log1p(np.maximum(counts - (0 if subtract is None else subtract), 0)))
        return self._stack(parts, (len(user_texts), len(item_texts)))

    def aligned(self, user_texts: Sequence[str], item_texts: Sequence[str], subtract: np.ndarray | None = None) -> torch.Tensor:
        """Features of aligned (user, item) pairs: ``[len(items), F]``; each distinct text is processed once.

        ``subtract``: co-occurrence counts to take out first (one per pair), see :meth:`own_counts`.
        """
        users = list(dict.fromkeys(user_texts))
        items = list(dict.fromkeys(item_texts))
        u_row = {t: i for i, t in enumerate(users)}
        i_row = {t: i for i, t in enumerate(items)}
        ui = np.array([u_row[t] for t in user_texts], dtype=np.int64)
        ii = np.array([i_row[t] for t in item_texts], dtype=np.int64)
        parts = []
        if "lexical" in self.features:
            u, v = self._tfidf(users), self._tfidf(items)
            parts.append(np.asarray(u[ui].multiply(v[ii]).sum(axis=1)).ravel())
        if "cooccurrence" in self.features:
            columns = self._item_columns(items)[ii]
            counts = np.asarray(self._neighbours(users)[ui, columns]).ravel()
            parts.append(np.log1p(np.maximum(counts - (0 if subtract is None else subtract), 0)))
        return self._stack(parts, (len(item_texts),))

    def own_counts(self, group: TrainGroup) -> np.ndarray:
        """Co-occurrence counts the group itself put in the table, per item (training must not see them).

        A training positive was counted with its own context when the table was fitted; left in,
        the feature would tell training which item is the positive, a signal no test user has.
        """
        out = np.zeros(len(group.item_texts))
        context = context_keys(group.user_text)
        for i, (text, label) in enumerate(zip(group.item_texts, group.labels)):
            key = title_key(text)
            if label > 0.5 and key is not None:
                out[i] = sum(1 for k in context if k != key)
        return out

    def _stack(self, parts: list[np.ndarray], shape: tuple[int, ...]) -> torch.Tensor:
        if not parts:
            return torch.zeros(*shape, 0)
        return torch.from_numpy(np.stack(parts, axis=-1)).float()

    def _token_ids(self, texts: Sequence[str]) -> list[list[int]]:
        return self.tokenizer(list(texts), add_special_tokens=False, truncation=False)["input_ids"] if texts else []

    def _tfidf(self, texts: Sequence[str]) -> sp.csr_matrix:
        """L2-normalised sublinear TF-IDF rows over the wordpiece vocabulary."""
        idf = self.idf.numpy()
        rows, cols, vals = [], [], []
        for r, ids in enumerate(self._token_ids(texts)):
            tokens, counts = np.unique(np.asarray(ids, dtype=np.int64), return_counts=True)
            tokens, counts = tokens[tokens < len(idf)], counts[tokens < len(idf)]
            weights = (1 + np.log(counts)) * idf[tokens]
            norm = np.linalg.norm(weights)
            rows.extend([r] * len(tokens))
            cols.extend(tokens.tolist())
            vals.extend((weights / norm if norm else weights).tolist())
        return sp.csr_matrix((vals, (rows, cols)), shape=(len(texts), len(idf)))

    def _matrix_of_counts(self) -> sp.csr_matrix:
        if self._matrix is None:
            n = len(self.keys)
            rows, cols = self.rows.numpy().astype(np.int64), self.cols.numpy().astype(np.int64)
            counts = self.counts.numpy().astype(np.float32)
            upper = sp.coo_matrix((counts, (rows, cols)), shape=(n, n))
            self._matrix = (upper + upper.T).tocsr()
        return self._matrix

    def _columns(self, keys: Sequence[int | None]) -> np.ndarray:
        """Column of each key in the count matrix; ``len(keys)`` (an all-zero column) when unknown."""
        table = self.keys.numpy()
        query = np.array([0 if k is None else k for k in keys], dtype=np.int64)
        position = np.searchsorted(table, query).clip(max=max(len(table) - 1, 0))
        found = (table[position] == query) if len(table) else np.zeros(len(query), dtype=bool)
        known = found & np.array([k is not None for k in keys], dtype=bool)
        return np.where(known, position, len(table))

    def _item_columns(self, item_texts: Sequence[str]) -> np.ndarray:
        return self._columns([title_key(t) for t in item_texts])

    def _neighbours(self, user_texts: Sequence[str]) -> sp.csr_matrix:
        """Per user, the summed count of every item with its context items: ``[users, keys + 1]``."""
        n = len(self.keys)
        rows, cols = [], []
        for r, text in enumerate(user_texts):
            for c in self._columns(context_keys(text)):
                if c < n:
                    rows.append(r)
                    cols.append(c)
        context = sp.csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=(len(user_texts), n))
        summed = context @ self._matrix_of_counts()
        return sp.hstack([summed, sp.csr_matrix((len(user_texts), 1), dtype=np.float32)]).tocsr()
