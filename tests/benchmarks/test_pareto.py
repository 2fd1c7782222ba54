"""The Pareto plot of compare_methods.py: the frontier it draws, and the file on a tiny results dict."""

from __future__ import annotations

import pytest

from _scripts import load_benchmark

@pytest.fixture(scope="module")
def compare():
    return load_benchmark("compare_methods.py")


def test_frontier_keeps_only_points_nothing_cheaper_beats(compare):
    points = [(1, 0.30), (2, 0.50), (3, 0.40), (4, 0.60), (4, 0.55), (0, 0.45), (2, 0.50), (5, 0.60)]
    # (1, .30) and (3, .40) lose to the free (0, .45); (4, .55) to (4, .60); (5, .60) ties a cheaper point;
    # of the two equal (2, .50) the first is kept.
    assert compare.pareto_frontier(points) == [5, 1, 3]
    assert compare.pareto_frontier([]) == []
    assert compare.pareto_frontier([(3, 0.1)]) == [0]


def _row(method, params, size, seconds, ndcg, tables=0):
    return {"method": method, "trainable_params": params, "adapter_bytes": size, "prior_table_bytes": tables,
            "train_seconds": seconds, "metrics": {"ndcg@10": ndcg}, "ci95": {"ndcg@10": [ndcg - 0.02, ndcg + 0.02]}}  # fmt: skip


def test_pareto_png_draws_each_cost_with_its_frontier(compare, tmp_path):
    pytest.importorskip("matplotlib")
    pytest.importorskip("adjustText")
    tables = 4_000_000  # the same for every method: left out of the size axis
    results = {"dataset": "demo", "split": "cold-user", "preset": "smoke", "results": [
        _row("popularity", 0, 0, 0.0, 0.20),
        _row("lora", 100_000, tables + 400_000, 30.0, 0.40, tables),
        _row("prompt", 8_000, tables + 40_000, 20.0, 0.30, tables),
        _row("full", 20_000_000, tables + 90_000_000, 10.0, 0.45, tables),
        _row("ia3", 16_000, tables + 900_000, 40.0, 0.35, tables),
    ]}  # fmt: skip
    fronts = compare.pareto(results, tmp_path / "pareto.png")
    assert (tmp_path / "pareto.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert fronts["trainable_params"] == ["popularity", "prompt", "ia3", "lora", "full"]
    # ia3's weights are bigger than lora's though it has fewer parameters: off the size frontier.
    assert fronts["weight_bytes"] == ["popularity", "prompt", "lora", "full"]
    assert fronts["train_seconds"] == ["popularity", "full"]  # the fastest to train is also the best
    assert compare._cost(results["results"][1], "weight_bytes") == 400_000
