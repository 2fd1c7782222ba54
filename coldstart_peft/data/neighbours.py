"""Each item's nearest items by TF-IDF cosine over its text: where text-hard negatives come from.

A text neighbour is the negative a lexical ranker finds hardest (same words, different product),
which is what the encoder has to learn to tell apart beyond TF-IDF.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
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
