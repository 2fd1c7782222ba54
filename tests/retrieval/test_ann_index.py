"""The FAISS backend of ItemIndex: recall against exact search, bias, filters, updates, caching, choice."""

from __future__ import annotations

import logging
import sys

import pytest
import torch
import torch.nn.functional as F
from safetensors import safe_open

pytest.importorskip("faiss")

from coldstart_peft.errors import ConfigError, MissingDependencyError  # noqa: E402
from coldstart_peft.retrieval import ann  # noqa: E402
from coldstart_peft.retrieval.index import ItemIndex  # noqa: E402

ITEMS, DIM, CLUSTERS = 5000, 32, 64


class TableEncoder:
    """Encodes the text ``"<row>"`` as row ``row`` of a fixed matrix, so embeddings are known in advance."""

    def __init__(self, vectors: torch.Tensor, scale: float = 5.0, bias: float | None = None):
        self.vectors, self.scale = vectors, torch.tensor(scale)
        if bias is not None:
            self.bias = torch.tensor(bias)

    def encode(self, texts, batch_size=128, progress=False):
        return self.vectors[[int(t) for t in texts]]


def clustered(n: int, dim: int, seed: int) -> torch.Tensor:
    """Unit vectors around ``CLUSTERS`` random centres: a catalog with topical structure."""
    g = torch.Generator().manual_seed(seed)
    centres = F.normalize(torch.randn(CLUSTERS, dim, generator=g), dim=-1)
    points = centres[torch.randint(0, CLUSTERS, (n,), generator=g)] + 0.35 * torch.randn(n, dim, generator=g) / dim**0.5
    return F.normalize(points, dim=-1)


@pytest.fixture(scope="module")
def vectors():
    return clustered(ITEMS + 200, DIM, seed=0)  # the last 200 rows are spare items for updates


@pytest.fixture(scope="module")
def queries(vectors):
    g = torch.Generator().manual_seed(1)
    return F.normalize(vectors[:ITEMS][torch.randperm(ITEMS, generator=g)[:50]] + 0.2 * torch.randn(50, DIM, generator=g) / DIM**0.5, dim=-1)


def build(vectors, kind: str, items: int = ITEMS, **kwargs) -> ItemIndex:
    index = ItemIndex(kwargs.pop("encoder", None) or TableEncoder(vectors), "fp", kind=kind, **kwargs)
    index.add({f"i{r}": str(r) for r in range(items)})
    return index


@pytest.fixture(scope="module")
def exact(vectors):
    return build(vectors, "exact")


@pytest.fixture(scope="module")
def approximate(vectors):
    index = build(vectors, "ann")
    index.prepare()
    return index


def recall(truth: list[tuple[str, float]], found: list[tuple[str, float]]) -> float:
    return len({i for i, _ in truth} & {i for i, _ in found}) / len(truth)


def test_ann_recall_at_10_is_high_and_scores_are_exact(exact, approximate, queries):
    assert approximate.uses_ann and approximate._searcher.ivf.nlist > 1  # a real partition, not one flat list
    recalls = []
    for q in queries:
        truth, found = exact.search(q, n=10), approximate.search(q, n=10)
        assert len(found) == 10
        recalls.append(recall(truth, found))
        every = exact.scores(q)
        for item, score in found:  # every returned score is the exact score of that item
            assert score == pytest.approx(float(every[exact.row(item)]), abs=1e-4)
        assert [s for _, s in found] == sorted((s for _, s in found), reverse=True)
    assert sum(recalls) / len(recalls) >= 0.95


def test_search_batch_matches_single_searches(approximate, exact, queries):
    batch = approximate.search_batch(queries[:8], n=10)
    assert [[i for i, _ in hits] for hits in batch] == [[i for i, _ in approximate.search(q, n=10)] for q in queries[:8]]
    assert [len(h) for h in exact.search_batch(queries[:8], n=10)] == [10] * 8


def test_a_large_bias_brings_in_an_item_faiss_would_not_propose(exact, approximate, queries):
    q = queries[0]
    far = int(torch.argmin(exact.scores(q)))  # the item least like the query
    bias = torch.zeros(ITEMS)
    bias[far] = 100.0
    found = approximate.search(q, n=5, bias=bias)
    assert found[0][0] == f"i{far}"
    assert found[0][1] == pytest.approx(float(exact.scores(q)[far]) + 100.0, abs=1e-4)
    assert [i for i, _ in found] == [i for i, _ in exact.search(q, n=5, bias=bias)]


def test_a_dense_bias_as_large_as_the_scores_ranks_like_exact_search(exact, approximate, queries):
    g = torch.Generator().manual_seed(2)
    bias = 3.0 * torch.rand(ITEMS, generator=g)  # popularity-like: every item, spread like the scores
    recalls, moved = [], 0
    for q in queries[:20]:
        truth = exact.search(q, n=10, bias=bias)
        recalls.append(recall(truth, approximate.search(q, n=10, bias=bias)))
        moved += recall(truth, exact.search(q, n=10)) < 1.0
    assert moved >= 10  # the bias does change what is best, so ignoring it would fail
    assert sum(recalls) / len(recalls) >= 0.95


def test_needs_more_is_the_threshold_bound():
    best = torch.tensor([9.0, 8.0, 7.0])
    assert not ann.needs_more(best, 3, worst_retrieved=4.0, worst_bias=3.0)  # 7 >= 4 + 3
    assert ann.needs_more(best, 3, worst_retrieved=4.0, worst_bias=3.5)
    assert ann.needs_more(best, 4, worst_retrieved=0.0, worst_bias=0.0)  # fewer candidates than wanted


def test_the_encoder_offset_is_in_every_ann_score(vectors, queries):
    plain = build(vectors, "ann", items=2000)
    offset = build(vectors, "ann", items=2000, encoder=TableEncoder(vectors, bias=-1.5))
    a, b = plain.search(queries[0], n=5), offset.search(queries[0], n=5)
    assert [i for i, _ in a] == [i for i, _ in b]
    assert [s - 1.5 for _, s in a] == pytest.approx([s for _, s in b], abs=1e-4)


def test_domain_filter_and_exclusions_are_honoured(exact, approximate, queries):
    rows = [r for r in range(ITEMS) if r % 7 == 0]
    within = exact.mask([f"i{r}" for r in rows])
    q = queries[3]
    best = exact.search(q, n=3)
    found = approximate.search(q, n=10, within=within, exclude=[i for i, _ in best])
    assert len(found) == 10 and all(int(i[1:]) % 7 == 0 for i, _ in found)
    assert not {i for i, _ in best} & {i for i, _ in found}
    truth = exact.search(q, n=10, within=within, exclude=[i for i, _ in best])
    assert recall(truth, found) >= 0.8
    tiny = exact.mask(["i1", "i2", "i3"])  # too few rows for FAISS to find: scanned exactly
    assert sorted(i for i, _ in approximate.search(q, n=10, within=tiny)) == ["i1", "i2", "i3"]


def test_new_and_reencoded_items_are_found_before_any_rebuild(vectors, queries):
    index = build(vectors, "ann")
    index.prepare()
    searcher = index._searcher
    q = queries[5]
    index.add({"new": str(ITEMS + 7)})
    index.encoder.vectors = torch.cat([index.encoder.vectors, q[None]])  # row 5200: the query itself
    index.add({"twin": str(len(vectors))})
    index.add({"i0": str(len(vectors))})  # an old item re-encoded onto the query
    assert index._searcher is searcher and searcher.rows == ITEMS and searcher.dirty == {0}
    top = {i for i, _ in index.search(q, n=2)}
    assert top == {"twin", "i0"}
    assert index.remove(["twin"]) == 1
    assert index._searcher is None  # rows renumbered: rebuilt on the next search
    assert index.search(q, n=1)[0][0] == "i0" and index._searcher.rows == len(index)


def test_auto_uses_exact_below_the_threshold_and_ann_above(vectors, queries, monkeypatch):
    monkeypatch.setattr(ann, "ANN_THRESHOLD", 1000)
    small, large = build(vectors, "auto", items=999), build(vectors, "auto", items=1000)
    small.search(queries[0], n=5)
    large.search(queries[0], n=5)
    assert not small.uses_ann and small._searcher is None
    assert large.uses_ann and large._searcher is not None and large._searcher.rows == 1000


def test_cache_round_trip_reuses_the_faiss_index(approximate, vectors, queries, tmp_path, monkeypatch):
    path = approximate.save(tmp_path / "catalog.safetensors")
    with safe_open(str(path), framework="pt") as handle:
        assert "ann_index" in handle.keys()
        assert handle.metadata()["ann_factory"] == ann.default_factory(ITEMS)

    def no_build(*args, **kwargs):
        raise AssertionError("the saved FAISS index should have been reused")

    with monkeypatch.context() as patch:
        patch.setattr(ann.FaissSearcher, "build", no_build)
        loaded = ItemIndex.load(path, TableEncoder(vectors), "fp", kind="ann")
        assert loaded._searcher.rows == ITEMS
        for q in queries[:5]:
            assert loaded.search(q, n=10) == approximate.search(q, n=10)
    grown = build(vectors, "ann", items=ITEMS)
    grown.prepare()
    grown.add({f"i{r}": str(r) for r in range(ITEMS, ITEMS + 50)})  # appended after the build, not yet in FAISS
    assert grown._searcher.rows == ITEMS
    regrown = ItemIndex.load(grown.save(tmp_path / "grown.safetensors"), TableEncoder(vectors), "fp", kind="ann")
    assert regrown._searcher.rows == ITEMS + 50  # the saved FAISS index holds the appended rows too
    new = vectors[ITEMS + 10]
    assert regrown.search(new, n=1)[0][0] == f"i{ITEMS + 10}"
    as_exact = ItemIndex.load(path, TableEncoder(vectors), "fp", kind="exact")
    assert as_exact._searcher is None and not as_exact.uses_ann
    other = ItemIndex.load(path, TableEncoder(vectors), "fp", kind="ann", ann_factory="IVF16,Flat")
    assert other._searcher is None  # another FAISS index was asked for: built afresh, not the cached one
    other.search(queries[0], n=3)
    assert other._searcher.ivf.nlist == 16


def test_ann_without_faiss_is_a_named_error_with_the_install_command(vectors, monkeypatch):
    monkeypatch.setitem(sys.modules, "faiss", None)  # makes ``import faiss`` raise ImportError
    with pytest.raises(MissingDependencyError, match=r"pip install 'coldstart-peft\[ann\]'"):
        ItemIndex(TableEncoder(vectors), "fp", kind="ann")
    with pytest.raises(ConfigError, match="exact, ann, auto"):
        ItemIndex(TableEncoder(vectors), "fp", kind="fast")


def test_auto_without_faiss_searches_exactly_and_says_so_once(vectors, exact, queries, monkeypatch, caplog):
    monkeypatch.setattr(ann, "ANN_THRESHOLD", 1000)
    monkeypatch.setitem(sys.modules, "faiss", None)
    index = build(vectors, "auto")
    with caplog.at_level(logging.INFO, logger="coldstart_peft.retrieval.ann"):
        found = [index.search(q, n=10) for q in queries[:3]]
    assert found == [exact.search(q, n=10) for q in queries[:3]]
    said = [r.message for r in caplog.records if "FAISS is not installed" in r.message]
    assert len(said) == 1 and "searching exactly" in said[0]
