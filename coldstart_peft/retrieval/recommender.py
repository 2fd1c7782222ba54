"""The recommend / search API: retrieve from the whole catalog, optionally rerank, keep sessions.

A :class:`Recommender` holds a two-tower scorer, an :class:`~coldstart_peft.retrieval.index.ItemIndex`
over a catalog and, optionally, a reranker. ``recommend`` turns what is known about a user
(clicked items or free texts, an optional query) into the same context text the scorers were
trained on, retrieves the top candidates from every item by one matrix product, and lets the
reranker order them. ``update`` records a click in a per-user session, so the next call reflects
it without any retraining: the seed's "as a new user clicks, the context grows" step.

A reranker is anything with ``score(user_texts, item_texts) -> scores``: a loaded cross-encoder
adapter, a baseline, or a per-domain adapter bank. A reranker whose ``score`` also takes
``domains=`` (one per pair, as ``AdapterBank.score`` does) gets each candidate's domain, so
every candidate is scored by its own domain's adapter.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from coldstart_peft.artifact import adapter_fingerprint, load_adapter, read_manifest
from coldstart_peft.data.schema import Dataset, Item
from coldstart_peft.data.text import TextSerializer
from coldstart_peft.errors import ConfigError, StaleIndexError, UnknownNameError
from coldstart_peft.retrieval.catalog import catalog_name, resolve_catalog
from coldstart_peft.retrieval.ann import check_kind
from coldstart_peft.retrieval.catalog_prior import CatalogPrior
from coldstart_peft.retrieval.index import ItemIndex
from coldstart_peft.retrieval.index_cache import INDEX_FOLDER, IndexCache, adapter_index, explicit_index
from coldstart_peft.scorer import takes_ids

logger = logging.getLogger(__name__)

__all__ = ["INDEX_FOLDER", "Recommendation", "Recommender", "Reranker", "rerank_scores"]


class Reranker(Protocol):
    """Anything that scores aligned (user text, item text) pairs; higher is more relevant.

    It may also accept ``domains=[...]`` (one domain per pair) to route pairs per domain.
    """

    def score(self, user_texts: Sequence[str], item_texts: Sequence[str]) -> np.ndarray:
        """One score per pair."""


@dataclass(frozen=True)
class Recommendation:
    """One ranked item.

    Args:
        item: the catalog item.
        score: the ranking score (the reranker's when reranking, else the retrieval score).
        retrieval_score: the two-tower score that brought the item into the candidates.
    """

    item: Item
    score: float
    retrieval_score: float

    @property
    def item_id(self) -> str:
        """The item's id."""
        return self.item.item_id


class Recommender:
    """Recommend and search over a whole catalog for users known by a few clicks or a query.

    Args:
        encoder: a two-tower scorer (``encode`` and ``scale``), e.g. a loaded ``bi-encoder`` adapter.
        index: the index of ``catalog`` built with ``encoder``.
        catalog: item id -> :class:`~coldstart_peft.data.schema.Item`.
        reranker: optional reranker of the retrieved candidates (a cross-encoder adapter, an
            adapter bank: see :class:`Reranker`).
        serializer: how items and user contexts become text; must match training.
        n_candidates: candidates retrieved for the reranker (at least ``k``).

    Example:
        >>> rec = Recommender.load("runs/demo/adapter", dataset="demo")
        >>> rec.update("u1", "D00042")
        >>> [r.item.title for r in rec.recommend(user="u1", k=3)]
    """

    def __init__(
        self,
        encoder,
        index: ItemIndex,
        catalog: Mapping[str, Item],
        reranker: Reranker | None = None,
        serializer: TextSerializer | None = None,
        n_candidates: int = 50,
    ):
        if n_candidates < 1:
            raise ConfigError(f"n_candidates must be at least 1, got {n_candidates}")
        self.encoder = encoder
        self.index = index
        self.catalog = dict(catalog)
        self.reranker = reranker
        self.serializer = serializer or TextSerializer()
        self.n_candidates = n_candidates
        self._sessions: dict[str, list[str]] = {}
        self._domain_masks: dict[str, torch.Tensor] = {}
        priors = getattr(encoder, "priors", None)
        self._texts: dict[str, str] = {}
        # The encoder's priors over the whole catalog: retrieval ranks by the model that was trained.
        self._prior = CatalogPrior(priors, index, _LazyTexts(self)) if priors is not None else None

    @classmethod
    def load(
        cls,
        adapters: str | Path | None = None,
        dataset: str | Path | Dataset | None = None,
        catalog: Mapping[str, Item] | Iterable[Item] | None = None,
        reranker: str | Path | Reranker | None = None,
        index: str | Path | None = None,
        serializer: TextSerializer | None = None,
        n_candidates: int = 50,
        base_model: str | Path | None = None,
        progress: bool = True,
        precision: str = "auto",
        index_kind: str = "auto",
    ) -> Recommender:
        """Load a bi-encoder adapter and a catalog; reuse or build the catalog's index.

        The index is cached at ``<adapters>/index/<catalog name>.safetensors``, or under the
        user cache folder when the adapter folder is read-only (see
        :mod:`coldstart_peft.retrieval.index_cache`). A cached index made with other weights is
        rebuilt; items added or changed since are encoded on load.

        Args:
            adapters: a ``bi-encoder`` adapter folder; ``None`` for the zero-shot base model.
            dataset: a dataset name (``"beauty"``, ``"demo"``), path, or :class:`Dataset`.
            catalog: the items directly, instead of ``dataset``.
            reranker: a cross-encoder adapter folder, or any object with ``score``.
            index: an explicit index file; a stale one raises instead of being rebuilt.
            serializer: text templates; defaults to the ones the library trains with.
            n_candidates: candidates handed to the reranker.
            base_model: the base model; ``None`` uses the adapter's (or the bundled MiniLM).
            progress: show a progress bar while encoding the catalog.
            precision: scoring precision of the encoder and a loaded reranker (``auto``: bf16
                only where the hardware computes it natively; see :mod:`coldstart_peft.hardware`).
            index_kind: ``"exact"``, ``"ann"`` (FAISS, the ``ann`` extra) or ``"auto"``: ANN from
                :data:`~coldstart_peft.retrieval.ann.ANN_THRESHOLD` items when FAISS is installed.
                A FAISS index is cached in the same file as the embeddings.

        Raises:
            ConfigError: ``adapters`` is not a bi-encoder adapter, neither catalog source is given,
                or ``index_kind`` is unknown.
            MissingDependencyError: ``index_kind`` is ``"ann"`` and FAISS is not installed.
            StaleIndexError: an explicit ``index`` was built with other weights.
            OverwriteRefusedError: the index path holds a file that is not an item index.
        """
        check_kind(index_kind)  # before any model loads: a missing FAISS fails in a second, not after encoding
        name, items = resolve_catalog(dataset, catalog)
        cache = explicit_index(index) if index is not None else None  # refused before the model loads
        encoder, fingerprint = _load_encoder(adapters, base_model)
        encoder.precision = precision
        if cache is None and adapters is not None:
            cache = adapter_index(adapters, catalog_name(name), fingerprint)
        serializer = serializer or TextSerializer()
        item_index = _open_index(cache, encoder, fingerprint, explicit=index is not None, progress=progress,
                                 kind=index_kind)  # fmt: skip
        changed = item_index.sync({i: serializer.item(item) for i, item in items.items()})
        built = item_index.prepare()
        if cache is not None and (changed or built or cache.write != cache.read):
            item_index.save(cache.write)
        if isinstance(reranker, (str, Path)):
            reranker = load_adapter(reranker, base_model=base_model, merge=True)
            reranker.precision = precision
        return cls(encoder, item_index, items, reranker=reranker, serializer=serializer, n_candidates=n_candidates)

    def user_text(self, history: Sequence[str | Item] = (), query: str | None = None, user: str | None = None) -> str:
        """The context text of a user: known items (ids, texts or :class:`Item`), then the query."""
        return self.serializer.user([self._as_item(h) for h in self._known(history, user)], query=query or None)

    def recommend(
        self,
        history: Sequence[str | Item] = (),
        query: str | None = None,
        k: int = 10,
        domain: str | None = None,
        exclude_seen: bool = True,
        user: str | None = None,
        rerank: bool = True,
    ) -> list[Recommendation]:
        """Rank the catalog for a user known by ``history`` (and their session, if ``user`` is given).

        Args:
            history: item ids from the catalog or free texts (titles), oldest first.
            query: optional search query added to the context.
            k: how many items to return.
            domain: return only items of this domain.
            exclude_seen: never return items in the history or session.
            user: a session key; clicks recorded with :meth:`update` extend the history.
            rerank: rerank the retrieved candidates when a reranker is set.

        Returns:
            Up to ``k`` :class:`Recommendation` objects, best first.

        Raises:
            UnknownNameError: ``domain`` is not a domain of the catalog.
        """
        if k < 1:
            raise ConfigError(f"k must be at least 1, got {k}")
        known = self._known(history, user)
        text = self.serializer.user([self._as_item(h) for h in known], query=query or None)
        reranker = self.reranker if rerank else None
        seen = {h.item_id if isinstance(h, Item) else h for h in known} if exclude_seen else set()
        context = [self._as_item(h).item_id for h in known]
        query_vector = self.encoder.encode([text])[0]
        n = max(k, self.n_candidates) if reranker is not None else k
        bias = self._prior.scores([text], [context])[0] if self._prior is not None else None
        hits = self.index.search(query_vector, n=n, exclude=seen, within=self._within(domain), bias=bias)
        if reranker is None or not hits:
            return [Recommendation(self.catalog[i], s, s) for i, s in hits]
        items = [self.catalog[i] for i, _ in hits]
        texts = [self.serializer.item(item) for item in items]
        scores = rerank_scores(reranker, [text] * len(items), texts, [item.domain for item in items],
                               context_ids=[context] * len(items), item_ids=[item.item_id for item in items])
        # A stable sort keeps retrieval order among equal reranker scores.
        order = np.argsort(-scores, kind="stable")[:k]
        return [Recommendation(items[j], float(scores[j]), hits[j][1]) for j in order]

    def search(
        self, query: str, k: int = 10, history: Sequence[str | Item] = (), user: str | None = None, domain: str | None = None
    ) -> list[Recommendation]:
        """Rank the catalog for a free-text query, optionally personalised by a history.

        Unlike :meth:`recommend`, items of the history may be returned: a searcher may look
        for something bought before.
        """
        return self.recommend(history=history, query=query, k=k, domain=domain, exclude_seen=False, user=user)

    def update(self, user: str, clicked_item: str | Item) -> list[str]:
        """Record a click of ``user`` (an item id or a free text); the next call for ``user`` reflects it.

        Returns:
            The user's session history, oldest first.
        """
        clicked = clicked_item.item_id if isinstance(clicked_item, Item) else str(clicked_item)
        if isinstance(clicked_item, Item) and clicked not in self.catalog:
            self.add_items([clicked_item])
        self._sessions.setdefault(user, []).append(clicked)
        return list(self._sessions[user])

    def session(self, user: str) -> list[str]:
        """The clicks recorded for ``user`` (empty for an unknown user)."""
        return list(self._sessions.get(user, []))

    def forget(self, user: str) -> None:
        """Drop ``user``'s session."""
        self._sessions.pop(user, None)

    def add_items(self, items: Iterable[Item]) -> int:
        """Add items to the catalog (or replace them); each is recommendable once this returns.

        Returns:
            How many items were encoded.
        """
        items = list(items)
        for item in items:
            self.catalog[item.item_id] = item
        self._domain_masks.clear()
        self._texts.clear()
        if self._prior is not None:
            self._prior.invalidate()
        return self.index.add({item.item_id: self.serializer.item(item) for item in items})

    def _known(self, history: Sequence[str | Item], user: str | None) -> list[str | Item]:
        # The session holds the most recent clicks, so they come last (the serializer keeps the newest).
        return [*history, *self._sessions.get(user, [])] if user is not None else list(history)

    def _as_item(self, entry: str | Item) -> Item:
        if isinstance(entry, Item):
            return entry
        # Not a catalog id: a free text describing something the user liked.
        return self.catalog.get(entry) or Item(item_id=entry, title=entry)

    def _within(self, domain: str | None) -> torch.Tensor | None:
        if domain is None:
            return None
        if domain not in self._domain_masks:
            ids = [i for i, item in self.catalog.items() if item.domain == domain]
            if not ids:
                raise UnknownNameError("domain", domain, {item.domain for item in self.catalog.values()})
            self._domain_masks[domain] = self.index.mask(ids)
        return self._domain_masks[domain]


def rerank_scores(
    reranker: Reranker, user_texts: Sequence[str], item_texts: Sequence[str], domains: Sequence[str],
    context_ids: Sequence[Sequence[str] | None] | None = None, item_ids: Sequence[str | None] | None = None,
) -> np.ndarray:  # fmt: skip
    """Score aligned pairs with ``reranker``, passing each pair's domain if it routes by domain
    and the ids if its priors read them.

    Args:
        reranker: see :class:`Reranker`.
        user_texts: one user context per pair.
        item_texts: one item text per pair.
        domains: the domain of each pair's item.
        context_ids: per pair, the ids of the user's context items.
        item_ids: per pair, the item's id.
    """
    extra = {}
    if _takes_domains(reranker):
        extra["domains"] = list(domains)
    if item_ids is not None and takes_ids(reranker.score):
        extra.update(context_ids=context_ids, item_ids=list(item_ids))
    scores = reranker.score(list(user_texts), list(item_texts), **extra)
    return np.asarray(scores, dtype=np.float64)


def _takes_domains(reranker: Reranker) -> bool:
    try:
        return "domains" in inspect.signature(reranker.score).parameters
    except (TypeError, ValueError):  # builtins and some C callables have no signature
        return False


def _load_encoder(adapters: str | Path | None, base_model: str | Path | None):
    """The two-tower scorer and the fingerprint its index is keyed by."""
    if adapters is None:
        from coldstart_peft.assembly import build_scorer

        encoder = build_scorer("bi-encoder", base_model)
        encoder.eval()
        return encoder, f"base-{encoder.base_fingerprint}"
    manifest = read_manifest(Path(adapters))
    encoder = load_adapter(adapters, base_model=base_model, merge=True)
    if not hasattr(encoder, "encode"):
        raise ConfigError(
            f"{adapters} is a {manifest['scorer']} adapter, which scores one pair per pass and cannot index a "
            "catalog; pass a bi-encoder adapter as adapters (train one with --scorer bi-encoder) "
            "and this one as reranker"
        )
    return encoder, adapter_fingerprint(adapters)


def _open_index(
    cache: IndexCache | None, encoder, fingerprint: str, explicit: bool, progress: bool, kind: str = "auto"
) -> ItemIndex:
    """Load the cached index if it is current; otherwise start an empty one."""
    path = cache.read if cache is not None else None
    if path is None or not path.is_file():
        return ItemIndex(encoder, fingerprint, progress=progress, kind=kind)
    try:
        return ItemIndex.load(path, encoder, fingerprint, progress=progress, kind=kind)
    except StaleIndexError:
        if explicit:
            raise
        # The cached index belongs to this adapter folder, so replacing it loses nothing.
        logger.warning("item index %s was built with other weights; re-encoding the catalog", path)
        return ItemIndex(encoder, fingerprint, progress=progress, kind=kind)


class _LazyTexts:
    """Item texts by id for the catalog prior, serialized on first use (the catalog may change)."""

    def __init__(self, recommender: Recommender):
        self.recommender = recommender

    def __getitem__(self, item_id: str) -> str:
        cache = self.recommender._texts
        if item_id not in cache:
            cache[item_id] = self.recommender.serializer.item(self.recommender.catalog[item_id])
        return cache[item_id]
