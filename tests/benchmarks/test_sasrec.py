"""SASRec peer (benchmarks/peers): learns a sequential pattern on a toy log, scores big candidate sets in one call."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

from coldstart_peft.data import ColdStartSplit, Dataset, Interaction, Item
from coldstart_peft.errors import OverwriteRefusedError
from coldstart_peft.examples import RankingCase

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def _load_peers():
    # Loaded by path as the package "peers" (the name the benchmark scripts import), without
    # putting benchmarks/ on sys.path, where its script names would shadow other modules.
    if "peers" not in sys.modules:
        spec = importlib.util.spec_from_file_location("peers", BENCHMARKS / "peers" / "__init__.py",
                                                      submodule_search_locations=[str(BENCHMARKS / "peers")])  # fmt: skip
        sys.modules["peers"] = module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    return sys.modules["peers"]


peers = _load_peers()
PEERS, SASRecBaseline, UNSEEN_SCORE = peers.PEERS, peers.SASRecBaseline, peers.sasrec.UNSEEN_SCORE

N_ITEMS = 60
TOY = dict(hidden=32, max_length=8, dropout=0.1, lr=5e-3, batch_size=64, max_epochs=10, eval_every=5, patience=2, threads=1)


def _case(context: list[int], candidates: list, target: int = 0) -> RankingCase:
    ids = [f"i{c}" if isinstance(c, int) else c for c in candidates]
    return RankingCase("u", ids, target=target, context_ids=[f"i{c}" for c in context], candidate_ids=ids)


def _successor_cases(rng: np.random.Generator, n: int) -> list[RankingCase]:
    # Context a, a+1, a+2 -> the next item is a+3, among 19 random others.
    cases = []
    for _ in range(n):
        a = int(rng.integers(0, N_ITEMS - 3))
        others = rng.choice([i for i in range(N_ITEMS) if i != a + 3], 19, replace=False).tolist()
        cases.append(_case([a, a + 1, a + 2], [a + 3, *others]))
    return cases


@pytest.fixture(scope="module")
def trained() -> SASRecBaseline:
    rng = np.random.default_rng(0)
    # Every training user walks the catalog in order: item i is always followed by i + 1.
    sequences = {}
    for u in range(300):
        start = int(rng.integers(0, N_ITEMS - 5))  # every item appears
        sequences[f"u{u}"] = [f"i{start + t}" for t in range(6)]
    return SASRecBaseline(**TOY).train(sequences, _successor_cases(rng, 50))


def test_sasrec_is_registered_as_a_peer():
    assert PEERS["sasrec"] is SASRecBaseline and SASRecBaseline().config.dropout == 0.5


def test_sasrec_learns_that_each_item_is_followed_by_the_next(trained):
    cases = _successor_cases(np.random.default_rng(1), 200)
    scores = np.stack(trained.score_cases(cases))
    hit_at_1 = float((scores.argmax(1) == 0).mean())
    assert hit_at_1 > 0.6  # chance is 1 in 20
    evaluated = [r for r in trained.history if "valid_ndcg@10" in r]
    assert evaluated and trained.best_valid_ndcg == max(r["valid_ndcg@10"] for r in evaluated)


def test_sasrec_scores_unseen_items_at_the_bottom_and_1000_candidates_in_one_call(trained):
    catalog = [f"i{n}" for n in range(N_ITEMS)] + [f"new{n}" for n in range(1100)]
    cases = [_case([n, n + 1], catalog, target=n + 2) for n in range(40)]
    batched = trained.score_cases(cases, batch_size=16)
    assert all(s.shape == (len(catalog),) for s in batched)
    assert all((s[N_ITEMS:] == UNSEEN_SCORE).all() and (s[:N_ITEMS] > UNSEEN_SCORE).all() for s in batched)
    assert np.allclose(batched[39], trained.score_case(cases[39]))  # batching does not change a score
    # A context of unseen items only gives no signal: every known candidate ties at 0.
    assert trained.score_case(_case([], ["i1", "i2", "nope"])).tolist() == [0.0, 0.0, UNSEEN_SCORE]


def test_sasrec_fits_a_split_and_stops_at_its_time_budget():
    items = {f"i{n}": Item(f"i{n}", title=f"item {n}") for n in range(20)}
    log = [(f"u{u}", f"i{(u + t) % 20}") for u in range(40) for t in range(5)]
    dataset = Dataset("toy", items, [Interaction(u, i, float(n)) for n, (u, i) in enumerate(log)])
    split = ColdStartSplit("cold-user", dataset, {}, [f"u{u}" for u in range(40)], [], [])
    sasrec = SASRecBaseline(**{**TOY, "max_epochs": 1000, "time_budget_s": 0.0}).fit(split)
    assert sasrec.epochs_run == 1 and len(sasrec.items) == 20


def test_sasrec_score_pool_equals_scoring_the_pool_as_candidates(trained):
    pool = [f"i{n}" for n in range(N_ITEMS)] + ["never-seen"]
    contexts = [[n, n + 1] for n in range(30)] + [[]]
    matrix = trained.score_pool([_case(c, ["i0"]) for c in contexts], pool, pool, batch_size=8)
    expected = np.stack(trained.score_cases([_case(c, pool) for c in contexts]))
    assert matrix.shape == (31, N_ITEMS + 1) and np.allclose(matrix, expected)
    assert (matrix[:, -1] == UNSEEN_SCORE).all() and (matrix[-1, :-1] == 0).all() and matrix[:-1, :-1].std() > 0


def _warm_script():
    spec = importlib.util.spec_from_file_location("sasrec_warm", BENCHMARKS / "sasrec_warm.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_leave_one_out_holds_out_the_last_two_items_with_unseen_negatives():
    rng = np.random.default_rng(3)
    sequences = {f"u{u}": [f"i{i}" for i in rng.choice(300, 6, replace=False)] for u in range(50)} | {"short": ["i1", "i2"]}
    train, valid, test = _warm_script().leave_one_out(sequences, n_negatives=99, seed=0)
    assert "short" not in train and len(valid) == len(test) == 50
    for v, t in zip(valid, test):
        seq = sequences[v.user_id]
        assert train[v.user_id] == seq[:-2] and v.context_ids == seq[:-2] and t.context_ids == seq[:-1]
        assert v.candidate_ids[v.target] == seq[-2] and t.candidate_ids[t.target] == seq[-1]
        for case in (v, t):
            assert len(set(case.candidate_ids)) == 100 and not set(case.candidate_ids[1:]) & set(seq)


def test_sasrec_warm_writes_its_results_on_the_demo_data(tmp_path):
    import json

    report = _warm_script().main(["--dataset", "demo", "--max-users", "120", "--time-budget", "0", "--eval-every", "1",
                                  "--out", str(tmp_path)])  # fmt: skip
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["training"]["epochs_run"] == report["training"]["epochs_run"] == 1 and saved["n_test_users"] == 120
    assert {"cpu_model", "cpu_capability"} <= set(saved["machine"]) and "commit" in saved["code"]
    assert 0.0 <= saved["test"]["ndcg@10"]["mean"] <= 1.0 and "| ndcg@10 |" in (tmp_path / "results.md").read_text()
    (tmp_path / "results.md").write_text("my notes")
    with pytest.raises(OverwriteRefusedError, match="not a file this library wrote"):
        _warm_script().main(["--dataset", "demo", "--max-users", "120", "--time-budget", "0", "--out", str(tmp_path)])
    assert (tmp_path / "results.md").read_text() == "my notes" and json.loads((tmp_path / "results.json").read_text()) == saved
