"""Catalog retrieval and the recommend / search API on top of a two-tower (bi-encoder) scorer.

Example:
    >>> from coldstart_peft.retrieval import Recommender
    >>> rec = Recommender.load("runs/demo/adapter", dataset="demo")
    >>> for r in rec.search("waterproof mascara", k=5):
    ...     print(r.item.title, round(r.score, 2))
"""

from coldstart_peft.retrieval.catalog import catalog_name, resolve_catalog
from coldstart_peft.retrieval.index import ItemIndex, text_hash
from coldstart_peft.retrieval.recommender import INDEX_FOLDER, Recommendation, Recommender, Reranker

__all__ = [
    "INDEX_FOLDER", "ItemIndex", "Recommendation", "Recommender", "Reranker", "catalog_name", "resolve_catalog",
    "text_hash",
]  # fmt: skip
