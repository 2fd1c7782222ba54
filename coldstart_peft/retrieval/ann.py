"""An approximate nearest-neighbour backend for :class:`~coldstart_peft.retrieval.index.ItemIndex`, from FAISS.

Exact retrieval reads every embedding for every query: fine for tens of thousands of items,
linear time and memory bandwidth per query beyond. Above :data:`ANN_THRESHOLD` items (or when
asked) an index searches a FAISS inner-product index instead, by default an inverted file
(``IVF<lists>,Flat``) whose lists are k-means cells of the catalog: a query scans only the
``nprobe`` cells nearest to it.

FAISS only proposes candidates here. :class:`ItemIndex` scores them again exactly from its own
float32 rows, so a returned score is the same number exact search gives that item, and adds a
user's per-item ``bias`` (their priors) with a bound that says when the candidates cannot miss
an item (see :func:`needs_more`). FAISS is an optional extra: ``pip install 'coldstart-peft[ann]'``.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np
import torch

from coldstart_peft.errors import ConfigError, MissingDependencyError

logger = logging.getLogger(__name__)

INDEX_KINDS = ("exact", "ann", "auto")
"""What an index may be asked to search with; ``auto`` picks by catalog size."""

ANN_THRESHOLD = 100_000
"""Catalog size from which ``auto`` uses the FAISS index. Below it an exact scan of 384-d float32
rows (150 MB at this size) is cheap enough, and its results need no approximation."""

INSTALL_HINT = "pip install 'coldstart-peft[ann]' (or pip install faiss-cpu)"

TRAIN_ROWS_PER_LIST = 64
"""k-means training rows per inverted list: FAISS asks for at least 39; more only slows the build."""


def import_faiss() -> Any:
    """The ``faiss`` module.

    Raises:
        MissingDependencyError: FAISS is not installed; the message gives the install command.
    """
    try:
        import faiss
    except ImportError as exc:
        raise MissingDependencyError(
            f"approximate search (--index-kind ann) needs FAISS, which is not installed; {INSTALL_HINT}, "
            "or search exactly with --index-kind exact (index_kind='exact' in Python)"
        ) from exc
    return faiss


def faiss_available() -> bool:
    """Whether FAISS can be imported."""
    try:
        import_faiss()
    except MissingDependencyError:
        return False
    return True


def check_kind(kind: str) -> str:
    """Validate an index kind (``exact``, ``ann`` or ``auto``); ``ann`` also requires FAISS.

    Raises:
        ConfigError: ``kind`` is not one of :data:`INDEX_KINDS`.
        MissingDependencyError: ``kind`` is ``ann`` and FAISS is not installed.
    """
    if kind not in INDEX_KINDS:
        raise ConfigError(f"unknown index kind {kind!r}; use one of {', '.join(INDEX_KINDS)}")
    if kind == "ann":
        import_faiss()
    return kind


def wants_ann(kind: str, items: int) -> bool:
    """Whether an index of ``items`` rows asked for ``kind`` should search with FAISS.

    ``auto`` uses FAISS from :data:`ANN_THRESHOLD` items on when FAISS is installed, and says in
    the log when it falls back to exact search because FAISS is missing.
    """
    if kind == "exact" or (kind == "auto" and items < ANN_THRESHOLD):
        return False
    if kind == "auto" and not faiss_available():
        logger.info("%d items would use approximate search but FAISS is not installed; searching exactly (%s)",
                    items, INSTALL_HINT)  # fmt: skip
        return False
    return True


def default_factory(items: int) -> str:
    """The FAISS index of ``items`` rows built when none is named: an inverted file of about sqrt(items) lists.

    k-means needs 39 training rows per list, so a catalog too small for two lists gets a flat scan.
    """
    lists = default_lists(items)
    return f"IVF{lists},Flat" if lists >= 2 else "Flat"


def default_lists(items: int) -> int:
    """Inverted lists for ``items`` rows: about sqrt(items), at most one per 39 rows (k-means' minimum)."""
    return max(1, min(int(round(math.sqrt(items))), items // 39))


def default_nprobe(lists: int) -> int:
    """Cells scanned per query when none is named: 1/32 of the lists, at least 8."""
    return max(1, min(lists, max(8, lists // 32)))


class FaissSearcher:
    """A FAISS inner-product index over rows ``0 .. rows-1`` of an item matrix, searched with a row filter.

    Args:
        index: a trained FAISS index whose ids are matrix rows.
        nprobe: inverted lists scanned per query (IVF indexes); ``None`` for :func:`default_nprobe`.
        ef_search: candidate-list size per query (HNSW indexes).
    """

    def __init__(self, index: Any, nprobe: int | None = None, ef_search: int = 128):
        self.faiss = import_faiss()
        self.index = index
        self.ivf = self.faiss.try_extract_index_ivf(index)
        self.nprobe = nprobe or (default_nprobe(self.ivf.nlist) if self.ivf is not None else None)
        self.ef_search = ef_search
        self.dirty: set[int] = set()  # rows re-encoded since the build: their FAISS vectors are stale

    @property
    def rows(self) -> int:
        """How many leading rows of the item matrix the FAISS index holds."""
        return int(self.index.ntotal)

    @classmethod
    def build(
        cls, matrix: torch.Tensor, factory: str | None = None, nprobe: int | None = None, ef_search: int = 128,
        seed: int = 0,
    ) -> FaissSearcher:  # fmt: skip
        """Train and fill a FAISS index on ``matrix`` (one float32 row per item).

        Args:
            matrix: the ``(items, dim)`` embeddings.
            factory: a :func:`faiss.index_factory` string (``"IVF1024,Flat"``, ``"HNSW32,Flat"``,
                ``"IVF1024,SQ8"``); ``None`` for :func:`default_factory`.
            nprobe: as in the constructor.
            ef_search: as in the constructor.
            seed: seeds the choice of k-means training rows, so a rebuild gives the same index.
        """
        faiss = import_faiss()
        data = np.ascontiguousarray(matrix.detach().to(torch.float32).cpu().numpy())
        index = faiss.index_factory(data.shape[1], factory or default_factory(len(data)), faiss.METRIC_INNER_PRODUCT)
        if not index.is_trained:
            ivf = faiss.try_extract_index_ivf(index)
            lists = ivf.nlist if ivf is not None else 1
            sample = min(len(data), max(TRAIN_ROWS_PER_LIST * lists, 1024))
            rows = np.sort(np.random.default_rng(seed).choice(len(data), sample, replace=False))
            index.train(data[rows])
        index.add(data)
        return cls(index, nprobe=nprobe, ef_search=ef_search)

    def extend(self, matrix: torch.Tensor) -> None:
        """Add the rows of ``matrix`` beyond :attr:`rows` (items appended since the build), without retraining."""
        if len(matrix) > self.rows:
            self.index.add(np.ascontiguousarray(matrix[self.rows :].detach().to(torch.float32).cpu().numpy()))

    def search(self, queries: np.ndarray, k: int, allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` rows of largest inner product for each query, among ``allowed`` rows.

        Args:
            queries: ``(m, dim)`` float32.
            k: candidates per query.
            allowed: optional boolean mask over :attr:`rows`; rows outside it are never returned.

        Returns:
            ``(inner products, rows)``, each ``(m, k)``; a row of ``-1`` marks a missing candidate.
        """
        faiss = self.faiss
        bitmap = None
        if allowed is not None:
            bitmap = np.packbits(allowed, bitorder="little")  # the bit order IDSelectorBitmap reads
            selector = faiss.IDSelectorBitmap(len(allowed), faiss.swig_ptr(bitmap))
        else:
            selector = None
        if self.ivf is not None:
            params = faiss.SearchParametersIVF(sel=selector, nprobe=self.nprobe)
        elif hasattr(self.index, "hnsw"):
            params = faiss.SearchParametersHNSW(sel=selector, efSearch=max(self.ef_search, k))
        else:
            params = faiss.SearchParameters(sel=selector)
        scores, rows = self.index.search(np.ascontiguousarray(queries, dtype=np.float32), k, params=params)
        del bitmap  # the selector read it during the search
        return scores, rows

    def serialize(self) -> torch.Tensor:
        """The index in FAISS's own binary format (what ``faiss.write_index`` writes), as a uint8 tensor."""
        return torch.from_numpy(self.faiss.serialize_index(self.index).copy())

    @classmethod
    def deserialize(cls, blob: torch.Tensor, nprobe: int | None = None, ef_search: int = 128) -> FaissSearcher:
        """Read an index written by :meth:`serialize` (FAISS's reader: no pickle involved)."""
        faiss = import_faiss()
        return cls(faiss.deserialize_index(blob.numpy()), nprobe=nprobe, ef_search=ef_search)


def needs_more(best: torch.Tensor, n: int, worst_retrieved: float, worst_bias: float) -> bool:
    """Whether the candidates of a biased ANN search may miss one of the ``n`` best items.

    The candidates are the FAISS top-k' by ``scale * <query, item>`` and the top-k' rows by
    ``bias``. An item in neither has an inner-product score of at most ``worst_retrieved`` (the
    k'-th retrieved one, up to FAISS's own approximation) and a bias of at most ``worst_bias``
    (the k'-th largest), so its total cannot exceed their sum: when the ``n``-th best candidate
    total reaches that, no other item can enter the top ``n`` (Fagin's threshold algorithm).

    Args:
        best: candidate totals, best first.
        n: how many results are wanted.
        worst_retrieved: the smallest score without bias among the FAISS candidates.
        worst_bias: the smallest bias among the top-k' bias rows.
    """
    if len(best) < n:
        return True
    return float(best[n - 1]) < worst_retrieved + worst_bias
