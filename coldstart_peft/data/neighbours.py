"""Each item's nearest items, by text or by who bought it: where hard negatives come from.

A text neighbour is the negative a lexical ranker finds hardest (same words, different product),
which is what the encoder has to learn to tell apart beyond TF-IDF. A co-bought neighbour is the
one the co-occurrence prior ranks high for a user who bought the item: over a whole catalog those
are the items the next purchase competes with.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer

TEXT_NEIGHBOURS = 50
"""Neighbours kept per item: enough that excluding what a user touched still leaves choices."""

_BLOCK = 1024  # rows per dense similarity block: about 50 MB of float32 on a 12k-item catalog


def text_neighbours(texts: Mapping[str, str], n: int = TEXT_NEIGHBOURS) -> dict[str, list[str]]:
    """The ``n`` items whose text is most like each item's, most similar first.

    Args:
        texts: item id → item text (the texts the scorer sees).
        n: neighbours per item; fewer when the catalog is smaller.

    Returns:
        item id → neighbour ids, the item itself never among them. Ties keep the mapping's order,
        so the result is deterministic.

    Example:
        >>> text_neighbours({"a": "red lipstick", "b": "red lipstick matte", "c": "hair dryer"}, n=1)["a"]
        ['b']
    """
    ids = list(texts)
    if len(ids) < 2 or n < 1:
        return {i: [] for i in ids}
    # Rows come out L2-normalized, so a sparse product is the cosine similarity.
    vectors = TfidfVectorizer().fit_transform([texts[i] for i in ids]).astype(np.float32)
    n = min(n, len(ids) - 1)
    result: dict[str, list[str]] = {}
    for start in range(0, len(ids), _BLOCK):
        block = (vectors[start : start + _BLOCK] @ vectors.T).toarray()
        rows = np.arange(block.shape[0])
        block[rows, start + rows] = -np.inf
        # A stable sort on the negated scores keeps ties in catalog order.
        top = np.argsort(-block, axis=1, kind="stable")[:, :n]
        for row, columns in enumerate(top):
            result[ids[start + row]] = [ids[c] for c in columns]
    return result


def buyer_matrix(sequences: Mapping[str, Sequence[str]]) -> tuple[list[str], sp.csr_matrix]:
    """The sorted items of ``sequences`` and who bought them: a ``(users, items)`` matrix of ones.

    A user who bought an item twice is one buyer of it. Item-kNN's similarities and
    :func:`cobought_neighbours` both count shared buyers from it.
    """
    items = sorted({i for seq in sequences.values() for i in seq})
    column = {item: j for j, item in enumerate(items)}
    rows = [u for u, seq in enumerate(sequences.values()) for _ in seq]
    cols = [column[i] for seq in sequences.values() for i in seq]
    buyers = sp.csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=(len(sequences), len(items)))
    buyers.sum_duplicates()
    buyers.data[:] = 1.0
    return items, buyers


def cobought_neighbours(sequences: Mapping[str, Sequence[str]], n: int = TEXT_NEIGHBOURS,
                        allowed: Collection[str] | None = None) -> dict[str, list[str]]:  # fmt: skip
    """The ``n`` items bought by the most of each item's buyers, most shared buyers first.

    Args:
        sequences: user → item ids (training users only: nothing held out may be counted).
        n: neighbours per item; fewer where fewer items share a buyer with it.
        allowed: the items that may be neighbours (``None``: every item in ``sequences``).

    Returns:
        item id → neighbour ids, for every item in ``sequences``; the item itself never among them.
        Ties keep the items' sorted order, so the result is deterministic.

    Example:
        >>> cobought_neighbours({"u": ["a", "b"], "v": ["a", "b", "c"]}, n=1)["a"]
        ['b']
    """
    items, buyers = buyer_matrix(sequences)
    shared = (buyers.T @ buyers).tocsr()
    allowed = set(items if allowed is None else allowed)
    keep = np.array([item in allowed for item in items], dtype=bool)
    result: dict[str, list[str]] = {}
    for j, item in enumerate(items):
        span = slice(shared.indptr[j], shared.indptr[j + 1])
        cols, counts = shared.indices[span], shared.data[span]
        mask = (cols != j) & keep[cols]
        cols, counts = cols[mask], counts[mask]
        order = np.lexsort((cols, -counts))[:n]  # most shared buyers first, then the sorted item order
        result[item] = [items[c] for c in cols[order]]
    return result
