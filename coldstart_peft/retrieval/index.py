"""An item index: a catalog's embeddings, for top-N retrieval with one matrix product.

The catalog is encoded once by a two-tower scorer (anything with ``encode(texts)`` and a
``scale``, such as the ``bi-encoder``) and kept as one contiguous float32 matrix, so ranking
every item for a user costs a matrix-vector product and a ``torch.topk``. Items can be added
or re-encoded at any time: a brand-new item is retrievable the moment its text is encoded,
which is the point of text-based cold start.

Large catalogs are searched approximately through FAISS (``kind="ann"``, or ``"auto"`` from
:data:`~coldstart_peft.retrieval.ann.ANN_THRESHOLD` items): see :mod:`coldstart_peft.retrieval.ann`.

On disk an index is one safetensors file (see :mod:`coldstart_peft.retrieval.index_file`)
whose metadata holds the item ids and the fingerprint of the adapter that produced the
vectors; loading it under another adapter raises :class:`~coldstart_peft.errors.StaleIndexError`.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Collection, Iterable, Mapping
from pathlib import Path
from typing import Protocol

import torch

from coldstart_peft.errors import CorruptAdapterError, StaleIndexError
from coldstart_peft.retrieval import ann
from coldstart_peft.retrieval.ann_search import search_ann, search_ann_batch
from coldstart_peft.retrieval.index_file import INDEX_FORMAT, INDEX_FORMAT_VERSION, read_index_file, write_index_file

logger = logging.getLogger(__name__)

__all__ = ["INDEX_FORMAT", "INDEX_FORMAT_VERSION", "ItemIndex", "TextEncoder", "text_hash"]

REBUILD_SHARE = 0.05
"""An ANN index is rebuilt once this share of rows was added or re-encoded since its build
(those rows are scanned exactly until then)."""


class TextEncoder(Protocol):
    """What an index needs from a scorer: normalized (or raw) text embeddings and a score scale."""

    scale: torch.Tensor

    def encode(self, texts: list[str], batch_size: int = ..., progress: bool = ...) -> torch.Tensor:
        """Embed ``texts``; one float32 row per text."""

    # A scorer whose item side differs from its user side also has
    # ``encode_items(texts, batch_size, progress)``; the index uses it when present.


def text_hash(text: str) -> int:
    """A signed 64-bit digest of an item text, stored per row so changed items get re-encoded."""
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "little", signed=True)


class ItemIndex:
    """Embeddings of catalog items keyed by item id, searchable by inner product.

    Args:
        encoder: the two-tower scorer that embeds item (and user) texts.
        fingerprint: identifies the weights that produced the embeddings (see
            :func:`~coldstart_peft.artifact.adapter_fingerprint`); saved with the index.
        batch_size: texts per forward pass when encoding.
        progress: show a tqdm bar while encoding.
        kind: ``"exact"`` (one matrix product), ``"ann"`` (FAISS candidates, scored exactly) or
            ``"auto"`` (ANN from :data:`~coldstart_peft.retrieval.ann.ANN_THRESHOLD` items when
            FAISS is installed, exact otherwise).
        ann_factory: the FAISS index to build (a :func:`faiss.index_factory` string such as
            ``"HNSW32,Flat"``); ``None`` for an inverted file of about sqrt(items) lists (a
            flat FAISS scan for fewer than 78 items).
        ann_nprobe: inverted lists scanned per query; ``None`` for 1/32 of them (at least 8).

    Raises:
        ConfigError: ``kind`` is not ``exact``, ``ann`` or ``auto``.
        MissingDependencyError: ``kind`` is ``ann`` and FAISS is not installed.

    Example:
        >>> index = ItemIndex(scorer, adapter_fingerprint("runs/demo/adapter"))
        >>> index.add({"D00001": "Matte red lipstick; Brand: Lumina"})
        1
        >>> index.search(scorer.encode(["Query: red lipstick"])[0], n=5)
        [('D00001', 17.3)]
    """

    def __init__(
        self, encoder: TextEncoder, fingerprint: str, batch_size: int = 128, progress: bool = False,
        kind: str = "auto", ann_factory: str | None = None, ann_nprobe: int | None = None,
    ):  # fmt: skip
        self.kind = ann.check_kind(kind)
        self.ann_factory, self.ann_nprobe = ann_factory, ann_nprobe
        self._searcher: ann.FaissSearcher | None = None
        self._faiss_missing = False
        self.encoder = encoder
        self.fingerprint = fingerprint
        self.batch_size = batch_size
        self.progress = progress
        self._ids: list[str] = []
        self._row: dict[str, int] = {}
        # Rows beyond ``len(self)`` are spare capacity, so adding one item is amortized O(1).
        self._matrix = torch.empty(0, 0)
        self._hashes = torch.empty(0, dtype=torch.int64)

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, item_id: object) -> bool:
        return item_id in self._row

    @property
    def ids(self) -> list[str]:
        """Item ids in row order."""
        return list(self._ids)

    @property
    def embeddings(self) -> torch.Tensor:
        """The ``(items, dim)`` float32 matrix, a contiguous view (do not modify it)."""
        return self._matrix[: len(self._ids)]

    @property
    def scale(self) -> float:
        """The encoder's score scale: scores are ``scale * <user, item>`` (plus the encoder's ``bias``, if any)."""
        return float(self.encoder.scale.detach().float())

    @property
    def offset(self) -> float:
        """The encoder's score offset (a pointwise-trained bi-encoder's ``bias``; 0 without one).

        It is one number for every item, so it shifts scores without changing any ranking.
        """
        bias = getattr(self.encoder, "bias", None)
        return float(bias.detach()) if isinstance(bias, torch.Tensor) else 0.0

    @property
    def uses_ann(self) -> bool:
        """Whether :meth:`search` goes through FAISS at the current size and :attr:`kind`.

        Ranking by inner product is only the encoder's ranking when its scale is positive.
        """
        if not self._ids or self.scale <= 0 or self._faiss_missing:
            return False
        use = ann.wants_ann(self.kind, len(self._ids))
        # auto without FAISS says so once, not at every search
        self._faiss_missing = not use and self.kind == "auto" and len(self._ids) >= ann.ANN_THRESHOLD
        return use

    def row(self, item_id: str) -> int:
        """Row of ``item_id`` in :attr:`embeddings`; ``KeyError`` if it is not indexed."""
        return self._row[item_id]

    def item_id(self, row: int) -> str:
        """The item id of row ``row``."""
        return self._ids[row]

    def mask(self, item_ids: Iterable[str]) -> torch.Tensor:
        """A boolean row mask selecting ``item_ids`` (ids not in the index are ignored)."""
        mask = torch.zeros(len(self._ids), dtype=torch.bool)
        rows = [self._row[i] for i in item_ids if i in self._row]
        if rows:
            mask[torch.tensor(rows)] = True
        return mask

    def add(self, texts: Mapping[str, str]) -> int:
        """Encode and index items, given as ``{item_id: item text}``.

        Items already indexed with the same text are skipped; items whose text changed are
        re-encoded in place. Each item is retrievable as soon as this returns.

        Returns:
            How many items were encoded.
        """
        todo = [(i, t, text_hash(t)) for i, t in texts.items() if i not in self._row or self._hash_of(i) != text_hash(t)]
        if not todo:
            return 0
        encode = getattr(self.encoder, "encode_items", self.encoder.encode)
        vectors = encode([t for _, t, _ in todo], batch_size=self.batch_size, progress=self.progress)
        vectors = vectors.detach().to(torch.float32).cpu()
        if len(self._ids) and vectors.shape[1] != self._matrix.shape[1]:
            raise StaleIndexError(
                f"the encoder gives {vectors.shape[1]}-dimensional embeddings but the index holds "
                f"{self._matrix.shape[1]}-dimensional ones; rebuild the index with this encoder"
            )
        new = [k for k, (i, _, _) in enumerate(todo) if i not in self._row]
        self._reserve(len(self._ids) + len(new), vectors.shape[1])
        for k, (item_id, _, digest) in enumerate(todo):
            if item_id not in self._row:
                self._row[item_id] = len(self._ids)
                self._ids.append(item_id)
            row = self._row[item_id]
            if self._searcher is not None and row < self._searcher.rows:
                self._searcher.dirty.add(row)
            self._matrix[row] = vectors[k]
            self._hashes[row] = digest
        return len(todo)

    def remove(self, item_ids: Iterable[str]) -> int:
        """Drop items from the index; returns how many were indexed."""
        drop = {i for i in item_ids if i in self._row}
        if drop:
            keep = [r for r, i in enumerate(self._ids) if i not in drop]
            self._matrix = self._matrix[keep].contiguous()
            self._hashes = self._hashes[keep].clone()
            self._ids = [self._ids[r] for r in keep]
            self._row = {i: r for r, i in enumerate(self._ids)}
            self._searcher = None  # rows were renumbered; rebuilt at the next search
        return len(drop)

    def sync(self, texts: Mapping[str, str]) -> int:
        """Make the index hold exactly the items of ``texts``: drop others, encode new or changed ones.

        Returns:
            How many rows changed (removed plus encoded).
        """
        removed = self.remove([i for i in self._ids if i not in texts])
        return removed + self.add(texts)

    def _hash_of(self, item_id: str) -> int:
        return int(self._hashes[self._row[item_id]])

    def _reserve(self, rows: int, dim: int) -> None:
        if self._matrix.shape[0] >= rows and self._matrix.shape[1] == dim:
            return
        capacity = max(rows, 2 * self._matrix.shape[0], 16)
        matrix = torch.zeros(capacity, dim, dtype=torch.float32)
        hashes = torch.zeros(capacity, dtype=torch.int64)
        n = len(self._ids)
        if n:
            matrix[:n] = self._matrix[:n]
            hashes[:n] = self._hashes[:n]
        self._matrix, self._hashes = matrix, hashes

    @torch.no_grad()
    def scores(self, queries: torch.Tensor) -> torch.Tensor:
        """Scores of every indexed item for each query embedding: ``(queries, items)``."""
        queries = queries.to(torch.float32)
        single = queries.dim() == 1
        out = (queries[None] if single else queries) @ self.embeddings.T
        out.mul_(self.scale)
        out.add_(self.offset)
        return out[0] if single else out

    @torch.no_grad()
    def row_scores(self, query: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        """Exact scores of the given rows for one query embedding (what :meth:`scores` gives them)."""
        return (self.embeddings[rows] @ query.to(torch.float32)).mul_(self.scale).add_(self.offset)

    def prepare(self) -> bool:
        """Build the FAISS index now if :meth:`search` will need one; otherwise do nothing.

        Returns:
            Whether a FAISS index was built (so a saved copy of this index is out of date).
        """
        if not self.uses_ann:
            return False
        searcher = self._searcher
        fresh = len(self._ids) - searcher.rows + len(searcher.dirty) if searcher is not None else len(self._ids)
        if searcher is not None and fresh <= REBUILD_SHARE * len(self._ids):
            return False
        self._build_searcher()
        return True

    def _build_searcher(self) -> None:
        logger.info("building a FAISS index (%s) of %d items", self.ann_factory or ann.default_factory(len(self)), len(self))
        self._searcher = ann.FaissSearcher.build(self.embeddings, self.ann_factory, nprobe=self.ann_nprobe)

    def _current_searcher(self) -> ann.FaissSearcher | None:
        if not self.uses_ann:
            return None
        self.prepare()
        return self._searcher

    @torch.no_grad()
    def search(
        self,
        query: torch.Tensor,
        n: int = 100,
        exclude: Collection[str] = (),
        within: torch.Tensor | None = None,
        bias: torch.Tensor | None = None,
    ) -> list[tuple[str, float]]:
        """The ``n`` best items for one query embedding, best first.

        Args:
            query: one embedding from the same encoder (a 1-D tensor).
            n: how many items to return (fewer when the index is smaller).
            exclude: item ids never to return (what the user has already seen).
            within: optional boolean row mask (see :meth:`mask`) restricting the candidates.
            bias: optional per-row scores added before ranking (a user's priors, see
                :class:`~coldstart_peft.retrieval.catalog_prior.CatalogPrior`).

        Returns:
            ``[(item_id, score), ...]`` in decreasing score.
        """
        if not self._ids:
            return []
        searcher = self._current_searcher()
        if searcher is not None:
            values, top = search_ann(self, searcher, query, n, exclude=exclude, within=within, bias=bias)
            return [(self._ids[r], float(v)) for r, v in zip(top.tolist(), values.tolist()) if v != float("-inf")]
        scores = self.scores(query)
        if bias is not None:
            scores += bias
        if within is not None:
            scores.masked_fill_(~within, float("-inf"))
        rows = [self._row[i] for i in exclude if i in self._row]
        if rows:
            scores[torch.tensor(rows)] = float("-inf")
        values, top = torch.topk(scores, min(n, len(self._ids)))
        keep = torch.isfinite(values)
        return [(self._ids[r], float(v)) for r, v in zip(top[keep].tolist(), values[keep].tolist())]

    @torch.no_grad()
    def search_batch(self, queries: torch.Tensor, n: int = 100) -> list[list[tuple[str, float]]]:
        """The ``n`` best items for each of several query embeddings, without filters or bias.

        Args:
            queries: ``(m, dim)`` embeddings from the same encoder.
            n: how many items per query.

        Returns:
            One ``[(item_id, score), ...]`` list per query, in decreasing score.
        """
        if not self._ids:
            return [[] for _ in range(len(queries))]
        searcher = self._current_searcher()
        if searcher is not None:
            values, top = search_ann_batch(self, searcher, queries, n)
        else:
            values, top = torch.topk(self.scores(queries), min(n, len(self._ids)), dim=1)
        return [
            [(self._ids[r], v) for r, v in zip(rows, vals) if r >= 0]
            for rows, vals in zip(top.tolist(), values.tolist())
        ]

    def save(self, path: str | Path) -> Path:
        """Write the index to one safetensors file, atomically (a crash leaves the old file).

        An index that searches with FAISS saves its FAISS index in the same file, in FAISS's own
        binary format, after adding the rows appended since its build (or rebuilding it, if
        rows were re-encoded).
        """
        metadata = {}
        tensors = {"embeddings": self.embeddings, "text_hashes": self._hashes[: len(self._ids)]}
        if self.uses_ann:
            # The saved FAISS index must hold every row as it is now: appended rows are added to it,
            # re-encoded ones (whose old vectors FAISS still holds) mean a rebuild.
            if not self.prepare() and self._searcher.dirty:
                self._build_searcher()
            self._searcher.extend(self.embeddings)
            tensors["ann_index"] = self._searcher.serialize()
            metadata["ann_factory"] = self.ann_factory or ann.default_factory(len(self._ids))
        return write_index_file(path, self.fingerprint, self._ids, tensors, metadata)

    @classmethod
    def load(
        cls, path: str | Path, encoder: TextEncoder, fingerprint: str, batch_size: int = 128, progress: bool = False,
        kind: str = "auto", ann_factory: str | None = None, ann_nprobe: int | None = None,
    ) -> ItemIndex:  # fmt: skip
        """Read an index written by :meth:`save`, refusing one made with other weights.

        A saved FAISS index is reused when this index searches with FAISS and asks for the same
        FAISS index kind (``ann_factory``); otherwise it is ignored, and built again if needed.

        Args:
            path: the safetensors file.
            encoder: the scorer the index will embed queries and new items with.
            fingerprint: the fingerprint of that scorer's weights.
            batch_size: as in the constructor.
            progress: as in the constructor.
            kind: as in the constructor.
            ann_factory: as in the constructor.
            ann_nprobe: as in the constructor.

        Raises:
            ConfigError: ``kind`` is not ``exact``, ``ann`` or ``auto``.
            MissingDependencyError: ``kind`` is ``ann`` and FAISS is not installed.
            DataNotFoundError: there is no file at ``path``.
            StaleIndexError: the index was built with weights of another fingerprint.
            CorruptAdapterError: the file is unreadable, truncated or not an item index.
        """
        metadata, ids, tensors = read_index_file(path, fingerprint)
        index = cls(encoder, fingerprint, batch_size=batch_size, progress=progress, kind=kind,
                    ann_factory=ann_factory, ann_nprobe=ann_nprobe)  # fmt: skip
        index._ids = ids
        index._row = {i: r for r, i in enumerate(ids)}
        index._matrix = tensors["embeddings"].to(torch.float32).contiguous()
        index._hashes = tensors["text_hashes"].to(torch.int64).clone()
        wanted = ann_factory or ann.default_factory(len(ids))
        if "ann_index" in tensors and index.uses_ann and metadata.get("ann_factory") == wanted:
            searcher = ann.FaissSearcher.deserialize(tensors["ann_index"], nprobe=ann_nprobe)
            if searcher.rows != len(ids) or searcher.index.d != index._matrix.shape[1]:
                raise CorruptAdapterError(f"{path} holds a FAISS index of {searcher.rows} rows for {len(ids)} items; "
                                          "delete it to rebuild")  # fmt: skip
            index._searcher = searcher
            logger.info("reusing the FAISS index (%s) saved in %s", wanted, path)
        return index
