"""The item-kNN prior probe (benchmarks/probes/item_knn_prior.py): what it computes, and that it runs end to end."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
from _scripts import load_benchmark, run_probe

probe = load_benchmark("probes/item_knn_prior.py")


def test_ranks_leave_the_scores_they_rank_untouched():
    # pool_ranks writes -inf over known items in place; the probe ranks one matrix under many weights.
    scores = np.array([[0.3, 0.9, 0.5], [0.1, 0.2, 0.7]])
    records = [SimpleNamespace(user_id="u", context=["b"], target="c"), SimpleNamespace(user_id="v", context=[], target="a")]
    better, tied = probe.ranks(scores, ["a", "b", "c"], records)
    assert better.tolist() == [0, 2] and tied.tolist() == [0, 0]  # b, known to u, is left out of u's ranking
    assert np.isfinite(scores).all() and scores[0, 1] == 0.9


def test_standardised_rows_have_zero_mean_and_unit_spread():
    out = probe.standardised(np.array([[1.0, 2.0, 3.0], [10.0, 10.0, 40.0]]))
    np.testing.assert_allclose(out.mean(axis=1), 0.0, atol=1e-12)
    np.testing.assert_allclose(out.std(axis=1), 1.0, atol=1e-9)


@pytest.mark.slow
def test_the_probe_chooses_the_weight_on_calibration_users_and_writes_its_report(tmp_path):
    run_probe("item_knn_prior.py", "--seconds", "3", "--calibration-users", "40", "--out", str(tmp_path))
    report = json.loads((tmp_path / "item_knn_prior.json").read_text())
    bases = [row["base"] for row in report["rows"]]
    assert bases == [None] + [b for b in ("hybrid+cooc", "hybrid+nbr", "lora", "full") for _ in range(2)]
    for row in report["rows"]:
        if "tuned" in row:
            assert row["weight"] == float(max(row["tuned"], key=row["tuned"].get))
            assert row["against_base"]["low"] <= row["against_base"]["mean"] <= row["against_base"]["high"]
    assert set(report["trained"]) == {"lora", "full"} and all(r["steps"] > 0 for r in report["trained"].values())
    assert report["calibration_users"] == 40 and report["held_out_users"] > 0 and report["pool"] > 100
    assert "item-kNN alone" in (tmp_path / "item_knn_prior.md").read_text()
