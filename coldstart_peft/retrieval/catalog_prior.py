"""The priors of one user against every item of an index, so retrieval ranks by the trained model.

A scorer composed with priors scores ``encoder(u, i) + w · f(u, i)``. The index gives the
first term for the whole catalog in one matrix product; this gives the second, exactly, for
the whole catalog too: popularity is one cached vector, co-occurrence one sparse row per user,
and the lexical and neighbour-text cosines one sparse product each against the catalog's cached
TF-IDF rows. Top-k of the sum is then the scorer's own top-k, with no candidate list that could
miss an item.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch

from coldstart_peft.priors import Priors
from coldstart_peft.priors.model import ITEM_TEXT_FEATURES, NEIGHBOUR_FEATURES
from coldstart_peft.retrieval.index import ItemIndex


class CatalogPrior:
    """Weighted prior scores of users against every row of ``index``.

    Args:
        priors: the scorer's fitted priors (their weights are read at each call).
        index: the item index whose rows the scores align with.
        texts: item id -> item text, for every indexed item (the lexical feature reads it).
    """

    def __init__(self, priors: Priors, index: ItemIndex, texts: Mapping[str, str]):
        self.priors, self.index, self.texts = priors, index, texts
        self._ids: list[str] | None = None

    def invalidate(self) -> None:
        """Forget the cached catalog features (call after item texts change)."""
        self._ids = None

    def _refresh(self) -> None:
        ids = self.index.ids
        if ids == self._ids:
            return
        tables = self.priors.tables
        self._columns = tables.columns(ids)
        self._popularity = torch.from_numpy(tables.popularity_of(self._columns)).float()
        if self.priors.uses(ITEM_TEXT_FEATURES):
            self._item_tfidf = tables.tfidf(self.priors.tokenizer, [self.texts[i] for i in ids]).T.tocsr()
        self._ids = ids

    @torch.no_grad()
    def scores(self, user_texts: Sequence[str], context_ids: Sequence[Sequence[str] | None]) -> torch.Tensor:
        """``w · f(user, item)`` for every user and every indexed item: ``(users, items)`` float32."""
        self._refresh()
        tables, weight = self.priors.tables, self.priors.weight.detach().float().cpu()
        out = torch.zeros(len(user_texts), len(self._columns))
        neighbours = tables.neighbours(list(context_ids)) if self.priors.uses(NEIGHBOUR_FEATURES) else None
        for feature, w in zip(self.priors.features, weight.tolist()):
            if feature == "popularity":
                out += w * self._popularity[None, :]
            elif feature == "lexical":
                lexical = (tables.tfidf(self.priors.tokenizer, list(user_texts)) @ self._item_tfidf).toarray()
                out += w * torch.from_numpy(lexical.astype(np.float32))
            elif feature == "cooccurrence":
                counts = neighbours[:, self._columns].toarray()
                out += w * torch.from_numpy(np.log1p(counts).astype(np.float32))
            else:
                text = (tables.neighbour_profiles(neighbours) @ self._item_tfidf).toarray()
                out += w * torch.from_numpy(text.astype(np.float32))
        return out
