"""The priors as a component any scorer composes with: ``score = scorer(text_u, text_i) + w · f(u, i)``.

A fine-tuned encoder on a CPU budget sees a few thousand training users; it should not spend
them relearning what is popular, which items are bought together, or exact word matches.
:class:`Priors` turns the fitted :class:`~coldstart_peft.priors.tables.PriorTables` into
features of a (user, item) pair and weights them with a few learned numbers, which the engine
trains with the adapter (at ``TrainConfig.prior_lr``) and
:func:`~coldstart_peft.calibration.calibrate_priors` refits on validation users.

Features, in :data:`FEATURES` order:

* ``popularity``: ``log(1 + n)`` of the item's training positives (by item id).
* ``lexical``: TF-IDF cosine of the user text and the item text over whole words, or the
  backbone's wordpieces (text only: works without ids).
* ``cooccurrence``: ``log(1 + n)``, n = how often training users bought the item next to one
  of this user's context items (by item ids).
* ``neighbour_text``: TF-IDF cosine of the item's text and the texts of the items training users
  bought next to this user's context items, each weighted by ``log(1 + n)``. What the user's
  items are bought with, read as words, so it reaches items training never saw (ids for the
  context, text for the item). Tables fitted with it keep each item's TF-IDF row.

The scorer never sees any of this: the engine adds the weighted features to the scorer's
logits in training (:meth:`Scorer.training_batch`, :meth:`Scorer.forward`) and
:meth:`Scorer.score` adds them when scoring. A serializer change never changes a prior.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from coldstart_peft.errors import ConfigError
from coldstart_peft.examples import TrainGroup
from coldstart_peft.priors.tables import PriorTables, check_lexical_units, positive_of

FEATURES = ("popularity", "lexical", "cooccurrence", "neighbour_text")
DEFAULT_FEATURES = FEATURES
"""The features ``priors=True`` asks for. ``neighbour_text`` joined the other three when it won on
Beauty's validation users beside a LoRA bi-encoder trained 150 s (NDCG@10 cold-item 0.2959 ->
0.3008, cold-user 0.4584 -> 0.4651, cold-domain 0.1814 -> 0.1865, each inside the intervals;
``benchmarks/results/levers-neighbour-text-*``)."""
CATALOG_FEATURES = ("popularity", "cooccurrence")
"""Features an item training never saw has none of (its text, and so the text features, it has)."""
NEIGHBOUR_FEATURES = ("cooccurrence", "neighbour_text")
"""Features read from the user's co-occurrence neighbours (:meth:`PriorTables.neighbours`)."""
ITEM_TEXT_FEATURES = ("lexical", "neighbour_text")
"""Features that compare a profile with the item's TF-IDF row."""
START = {"popularity": 1.0, "lexical": 5.0, "cooccurrence": 0.5, "neighbour_text": 5.0}
"""Starting weights: each feature on the scale of a cosine logit at temperature 0.05 (a perfect
word match is worth about a quarter of the similarity range)."""


def check_features(features: Sequence[str]) -> tuple[str, ...]:
    """``features`` in :data:`FEATURES` order; :class:`ConfigError` on an unknown name or none at all."""
    unknown = sorted(set(features) - set(FEATURES))
    if unknown or not features:
        raise ConfigError(
            f"prior features must be a non-empty subset of {', '.join(FEATURES)}, got {list(features)}; "
            "pass --no-priors to train without priors"
        )
    return tuple(f for f in FEATURES if f in features)


def check_new_item_share(share: float) -> float:
    """``share`` if it is between 0 and 1, else a :class:`ConfigError`."""
    if not 0.0 <= share <= 1.0:
        raise ConfigError(f"new_item_share must be between 0 and 1, got {share}")
    return share


class Priors(nn.Module):
    """Learned weights over prior features; the tables are fitted once and shared.

    Args:
        features: which of :data:`FEATURES` to use.
        tokenizer: the backbone's tokenizer (for a lexical feature over its wordpieces).
        tables: fitted tables, or ``None`` until :meth:`fit`.
        lexical_units: what :meth:`fit` makes the lexical feature count, ``"words"`` or the
            backbone's ``"wordpiece"`` (:data:`~coldstart_peft.priors.tables.LEXICAL_UNITS`);
            fitted tables keep their own, so adapters saved with wordpiece tables score as before.
        new_item_share: in training only, the share of each batch's items that :meth:`grid`
            shows the way a new item looks at scoring time: no popularity, no co-occurrence
            (their text, and so the lexical feature, stays). The encoder then learns to rank items the
            catalog features cannot see, instead of leaning on those features for every item.
    """

    def __init__(self, features: Sequence[str] = DEFAULT_FEATURES, tokenizer=None, tables: PriorTables | None = None,
                 lexical_units: str = "words", new_item_share: float = 0.0):  # fmt: skip
        super().__init__()
        self.new_item_share = check_new_item_share(new_item_share)
        self.features = check_features(features)
        self.weight = nn.Parameter(torch.tensor([START[f] for f in self.features]))
        self.tokenizer = tokenizer
        self.tables = tables
        self.lexical_units = tables.lexical_units if tables is not None else check_lexical_units(lexical_units)

    def uses(self, features: Sequence[str]) -> bool:
        """Whether any of ``features`` is among this prior's (e.g. :data:`NEIGHBOUR_FEATURES`)."""
        return any(f in self.features for f in features)

    @property
    def fitted(self) -> bool:
        """Whether tables are in place."""
        return self.tables is not None

    def fit(self, groups: Sequence[TrainGroup]) -> PriorTables:
        """Fit the tables on training groups (their items' ids, contexts and texts)."""
        with_texts = "neighbour_text" in self.features
        self.tables = PriorTables.fit(groups, self.tokenizer, self.lexical_units, item_texts=with_texts)
        return self.tables

    def named_weights(self) -> dict[str, float]:
        """``{feature: weight}``, as recorded in manifests and results."""
        return dict(zip(self.features, self.weight.detach().float().cpu().tolist()))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """``features · w``: the prior's logit for features of any leading shape ``[..., F]``."""
        return features.to(self.weight.device, torch.float32) @ self.weight

    # -- features --------------------------------------------------------------------------

    def _tables(self) -> PriorTables:
        if self.tables is None:
            raise ConfigError("the priors are not fitted: train first, or load an adapter that has prior tables")
        return self.tables

    def grid(self, groups: Sequence[TrainGroup]) -> torch.Tensor:
        """Training features of every group's user with every item of the batch: ``[groups, items, F]``.

        Items are the groups' items concatenated in order. Each group's own positive loses the
        counts the group itself added to the tables, so training sees the features as a new
        user would (left in, they would tell training which item is the positive). A
        ``new_item_share`` of the items, drawn from torch's generator (so the run's seed fixes
        them), lose their popularity and co-occurrence for every group, as a new item has none.
        """
        tables = self._tables()
        item_ids = [i for g in groups for i in (g.item_ids or [None] * len(g.item_texts))]
        item_texts = [t for g in groups for t in g.item_texts]
        columns = tables.columns(item_ids)
        own_pop = np.zeros((len(groups), len(item_ids)))
        own_pairs = np.zeros((len(groups), len(item_ids)))
        own_keys: list[tuple[int, str, int]] = []  # (group, its positive, the pairs it added)
        start = 0
        for g, group in enumerate(groups):
            target = positive_of(group)
            if target is not None:
                j = start + group.item_ids.index(target)
                own_pop[g, j] = 1
                own_pairs[g, j] = sum(1 for c in group.context_ids or () if c != target)
                own_keys.append((g, target, int(own_pairs[g, j])))
            start += len(group.item_texts)
        neighbours = tables.neighbours([g.context_ids for g in groups]) if self.uses(NEIGHBOUR_FEATURES) else None
        items = tables.tfidf(self.tokenizer, item_texts) if self.uses(ITEM_TEXT_FEATURES) else None
        parts = []
        for feature in self.features:
            if feature == "popularity":
                counts = np.rint(np.expm1(tables.popularity_of(columns)))[None, :]
                parts.append(np.log1p(np.maximum(counts - own_pop, 0)))
            elif feature == "lexical":
                users = tables.tfidf(self.tokenizer, [g.user_text for g in groups])
                parts.append((users @ items.T).toarray())
            elif feature == "cooccurrence":
                counts = neighbours[:, columns].toarray()
                parts.append(np.log1p(np.maximum(counts - own_pairs, 0)))
            else:  # the positive's own text must not reach its user's profile through the pairs it added
                g, keys, pairs = zip(*own_keys) if own_keys else ((), (), ())
                own = sp.csr_matrix((np.array(pairs, dtype=np.float32), (g, tables.columns(list(keys)))),
                                    shape=neighbours.shape)  # fmt: skip
                profiles = tables.neighbour_profiles(neighbours - own)
                parts.append((profiles @ items.T).toarray())
        grid = torch.from_numpy(np.stack(parts, axis=-1)).float()
        if self.new_item_share > 0:
            new = torch.rand(len(item_ids)) < self.new_item_share
            catalog = torch.tensor([f in CATALOG_FEATURES for f in self.features])
            grid[:, new[:, None] & catalog] = 0.0
        return grid

    def pairs(
        self,
        user_texts: Sequence[str],
        item_texts: Sequence[str],
        context_ids: Sequence[Sequence[str] | None] | None = None,
        item_ids: Sequence[str | None] | None = None,
    ) -> torch.Tensor:
        """Features of aligned pairs: ``[pairs, F]``; each distinct user and item is processed once.

        Args:
            user_texts, item_texts: the pair's texts.
            context_ids: per pair, the ids of the user's context items (``None``: unknown).
            item_ids: per pair, the item's id (``None``: not from a catalog).
        """
        tables = self._tables()
        n = len(item_texts)
        context_ids = list(context_ids) if context_ids is not None else [None] * n
        item_ids = list(item_ids) if item_ids is not None else [None] * n
        if not len(user_texts) == n == len(context_ids) == len(item_ids):
            raise ValueError(f"{len(user_texts)} users, {n} items, {len(context_ids)} contexts and {len(item_ids)} ids")
        user_keys = [(t, tuple(c) if c is not None else None) for t, c in zip(user_texts, context_ids)]
        users = list(dict.fromkeys(user_keys))
        items = list(dict.fromkeys(item_texts))
        user_row = {u: i for i, u in enumerate(users)}
        item_row = {t: i for i, t in enumerate(items)}
        ui = np.array([user_row[k] for k in user_keys], dtype=np.int64)
        ii = np.array([item_row[t] for t in item_texts], dtype=np.int64)
        columns = tables.columns(item_ids)
        neighbours = tables.neighbours([c for _, c in users]) if self.uses(NEIGHBOUR_FEATURES) else None
        item_rows = tables.tfidf(self.tokenizer, items) if self.uses(ITEM_TEXT_FEATURES) else None
        parts = []
        for feature in self.features:
            if feature == "popularity":
                parts.append(tables.popularity_of(columns))
            elif feature == "lexical":
                u = tables.tfidf(self.tokenizer, [t for t, _ in users])
                parts.append(np.asarray(u[ui].multiply(item_rows[ii]).sum(axis=1)).ravel())
            elif feature == "cooccurrence":
                parts.append(np.log1p(np.asarray(neighbours[ui, columns]).ravel()))
            else:
                profiles = tables.neighbour_profiles(neighbours)
                parts.append(np.asarray(profiles[ui].multiply(item_rows[ii]).sum(axis=1)).ravel())
        return torch.from_numpy(np.stack(parts, axis=-1).reshape(n, len(parts))).float()

    @torch.no_grad()
    def score(self, user_texts, item_texts, context_ids=None, item_ids=None) -> np.ndarray:
        """The weighted prior of aligned pairs (see :meth:`pairs`), one float32 per pair."""
        return self(self.pairs(user_texts, item_texts, context_ids, item_ids)).cpu().numpy().astype(np.float32)
