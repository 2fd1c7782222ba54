"""Item-kNN and BM25 peers: each scores what it claims to, and ranks a 1000+ item catalog in one batched call."""

import numpy as np
import pytest

from coldstart_peft.data import ColdStartSplit, Dataset, Interaction, Item
from coldstart_peft.errors import ConfigError, DataError
from coldstart_peft.evaluation import BASELINES, make_baseline
from coldstart_peft.evaluation.peers import BM25Baseline, ItemKNNBaseline, top_k_per_row
from coldstart_peft.examples import RankingCase


def _split(titles: dict[str, str], log: list[tuple[str, str]], train_users: list[str]) -> ColdStartSplit:
    items = {i: Item(i, title=t, categories=("Beauty", "Makeup"), domain="Makeup") for i, t in titles.items()}
    dataset = Dataset("toy", items, [Interaction(u, i, float(n)) for n, (u, i) in enumerate(log)])
    return ColdStartSplit("cold-user", dataset, {}, train_users, [], [])


def _case(context: list[str], candidates: list[str]) -> RankingCase:
    return RankingCase("u", list(candidates), context_ids=context, candidate_ids=list(candidates))


def _random_split(n_items: int, n_users: int, per_user: int, seed: int = 0) -> ColdStartSplit:
    rng = np.random.default_rng(seed)
    titles = {f"i{n}": f"item {n}" for n in range(n_items)}
    log = [(f"u{u}", f"i{i}") for u in range(n_users) for i in rng.choice(n_items, per_user, replace=False)]
    return _split(titles, log, [f"u{u}" for u in range(n_users)])


def test_peers_are_registered_by_name():
    assert BASELINES["item-knn"] is ItemKNNBaseline and BASELINES["bm25"] is BM25Baseline
    assert isinstance(make_baseline("item-knn", k=5), ItemKNNBaseline)


def test_item_knn_scores_a_co_bought_item_above_an_unrelated_one():
    titles = {i: i for i in "abcdef"}
    # a and b are bought together; c and d together; e by one user alone; f by no training user.
    log = [("t1", "a"), ("t1", "b"), ("t2", "a"), ("t2", "b"), ("t3", "c"), ("t3", "d"), ("t4", "c"), ("t4", "e"),
           ("x", "f"), ("x", "a")]  # fmt: skip
    knn = ItemKNNBaseline().fit(_split(titles, log, ["t1", "t2", "t3", "t4"]))
    scores = knn.score_case(_case(["a"], ["c", "b", "d", "f"]))
    assert scores[1] == pytest.approx(1.0) and scores[[0, 2, 3]].tolist() == [0.0, 0.0, 0.0]
    # An unseen context item adds nothing; summing over context items adds their similarities.
    assert knn.score_case(_case(["a", "f", "d"], ["b", "c"])).tolist() == pytest.approx([1.0, 1 / np.sqrt(2)])


@pytest.mark.parametrize("shrink", [0.0, 2.0])
def test_item_knn_equals_brute_force_cosine_when_every_neighbour_is_kept(shrink):
    split = _random_split(n_items=25, n_users=40, per_user=5)
    knn = ItemKNNBaseline(k=1000, shrink=shrink).fit(split)
    buyers: dict[str, set] = {}
    for user, seq in split.train_sequences().items():
        for item in seq:
            buyers.setdefault(item, set()).add(user)
    contexts = [["i1", "i7"], ["i3"], ["i2", "i2", "i9", "i4"]]
    candidates = [f"i{n}" for n in range(25)] + ["never-bought"]
    for context, scores in zip(contexts, knn.score_cases([_case(c, candidates) for c in contexts])):
        expected = [sum(len(buyers[c] & buyers[j]) / (np.sqrt(len(buyers[c]) * len(buyers[j])) + shrink)
                        for c in set(context) if c != j) if j in buyers else 0.0 for j in candidates]  # fmt: skip
        assert scores == pytest.approx(expected, rel=1e-5)


def test_item_knn_keeps_only_the_k_most_similar_neighbours():
    split = _random_split(n_items=30, n_users=60, per_user=6, seed=1)
    full, top3 = ItemKNNBaseline(k=1000).fit(split), ItemKNNBaseline(k=3).fit(split)
    for row in range(len(full.items)):
        kept, everything = top3.neighbours.getrow(row), full.neighbours.getrow(row).toarray().ravel()
        assert kept.nnz == min(3, np.count_nonzero(everything))
        # Every kept similarity is at least as large as every dropped one.
        dropped = np.delete(everything, kept.indices)
        assert kept.data.min() >= dropped.max() - 1e-7 and np.allclose(kept.data, everything[kept.indices])


def test_top_k_per_row_breaks_ties_by_column_order():
    import scipy.sparse as sp

    kept = top_k_per_row(sp.csr_matrix(np.array([[0.5, 0.5, 0.5, 0.9]])), 2)
    assert sorted(kept.indices.tolist()) == [0, 3]


def test_item_knn_ranks_a_1000_item_catalog_in_one_batched_call():
    split = _random_split(n_items=1200, n_users=400, per_user=8)
    knn = ItemKNNBaseline().fit(split)
    catalog = [f"i{n}" for n in range(1200)]
    sequences = [split.train_sequences()[f"u{u}"] for u in range(300)]
    cases = [_case(seq[:3], catalog) for seq in sequences]
    batched = knn.score_cases(cases)
    assert len(batched) == 300 and all(s.shape == (1200,) for s in batched)
    assert np.array_equal(batched[299], knn.score_case(cases[299]))  # the second batch matches one by one
    # Each user bought its 4th item with its first three, so that item is a neighbour of theirs.
    assert all(s[catalog.index(seq[3])] > 0 for s, seq in zip(batched, sequences))


def test_item_knn_refuses_a_bad_k_and_cases_without_ids():
    with pytest.raises(ConfigError, match="k >= 1"):
        ItemKNNBaseline(k=0)
    knn = ItemKNNBaseline().fit(_random_split(5, 4, 2))
    with pytest.raises(DataError, match="ranking_cases"):
        knn.score_case(RankingCase("u", ["a text"], context_ids=["i1"]))


def test_bm25_ranks_the_lexical_match_first():
    titles = {"a": "red lipstick matte", "b": "red lipstick gloss", "c": "beard oil cedar", "d": "dry shampoo spray"}
    bm25 = make_baseline("bm25").fit(_split(titles, [("t", "a")], ["t"]))
    scores = bm25.score_case(_case(["a"], ["c", "b", "d", "unknown-item"]))
    assert int(np.argmax(scores)) == 1 and scores[[0, 2, 3]].tolist() == [0.0, 0.0, 0.0]
    # Without context ids the user text is the query; words the catalog lacks tie every candidate at 0.
    unknown = RankingCase("zebra qwerty", ["a", "b"], candidate_ids=["a", "b"])
    assert bm25.score_case(unknown).tolist() == [0.0, 0.0]
    assert bm25.score_case(RankingCase("matte", ["a", "b"], candidate_ids=["a", "b"]))[0] > 0


def test_bm25_ranks_a_1000_item_catalog_in_one_batched_call():
    rng = np.random.default_rng(0)
    words = [f"w{n}" for n in range(300)]
    titles = {f"i{n}": " ".join(rng.choice(words, 4)) for n in range(1200)}
    titles["i7"] = "serum hyaluronic"
    titles["i8"] = "serum hyaluronic night cream"
    titles["query"] = "hyaluronic serum"
    bm25 = BM25Baseline().fit(_split(titles, [], []))
    catalog = [i for i in titles if i != "query"]
    scores = bm25.score_cases([_case(["query"], catalog), _case(["i8"], catalog)])
    # The shorter document with both query words beats the longer one (length normalisation).
    assert np.argsort(-scores[0])[:2].tolist() == [7, 8]
    assert int(np.argmax(scores[1])) == 8 and scores[1][7] > 0


@pytest.mark.parametrize("name", ["item-knn", "bm25"])
def test_score_pool_equals_scoring_the_pool_as_every_case_s_candidates(name):
    split = _random_split(n_items=1100, n_users=300, per_user=6, seed=2)
    baseline = make_baseline(name).fit(split)
    pool = [f"i{n}" for n in range(1100)] + ["not-in-catalog"]
    cases = [_case(split.train_sequences()[f"u{u}"][:3], ["i0"]) for u in range(270)]
    matrix = baseline.score_pool(cases, pool, pool)
    assert matrix.shape == (270, 1101) and matrix[:, -1].tolist() == [0.0] * 270
    expected = baseline.score_cases([_case(c.context_ids, pool) for c in cases])
    assert np.allclose(matrix, np.stack(expected)) and matrix.any()


def test_item_knn_tunes_k_and_shrink_on_validation_cases():
    titles = {i: i for i in "abcd"}
    # a's nearest neighbour is c (two common buyers); b is a's second neighbour, lost when k=1.
    log = [("t1", "a"), ("t1", "b"), ("t2", "a"), ("t2", "c"), ("t3", "a"), ("t3", "c"), ("t4", "c"), ("t4", "d")]
    split = _split(titles, log, ["t1", "t2", "t3", "t4"])
    valid = [RankingCase("v", ["b", "d"], target=0, context_ids=["a"], candidate_ids=["b", "d"])]
    knn = ItemKNNBaseline(ks=(1, 5), shrinks=(0.0, 3.0), valid_cases=valid).fit(split)
    assert set(knn.validation) == {(1, 0.0), (5, 0.0), (1, 3.0), (5, 3.0)}
    assert knn.validation[(1, 0.0)] < knn.validation[(5, 0.0)] == 1.0 and knn.k == 5
    assert knn.score_case(valid[0])[0] > 0
    fixed = ItemKNNBaseline(k=1, shrink=0.0, valid_cases=valid).fit(split)
    assert fixed.validation == {} and fixed.score_case(valid[0]).tolist() == [0.0, 0.0]
