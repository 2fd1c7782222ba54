"""The distillation probe (benchmarks/probes/distill_hybrid.py) runs end to end and records its teacher."""

from __future__ import annotations

import json

import pytest
from _scripts import run_probe

from coldstart_peft.priors.model import START

TEACHER = ("popularity", "lexical", "cooccurrence")  # the probe's TEACHER_FEATURES


@pytest.mark.slow
def test_the_probe_fits_a_teacher_trains_each_weight_and_writes_its_report(tmp_path):
    run_probe("distill_hybrid.py", "--split", "cold-user", "--priors", "off", "--weight", "0", "--weight", "2", "--seconds", "3", "--calibration-users", "40", "--out", str(tmp_path))
    report = json.loads((tmp_path / "distill_hybrid.json").read_text())
    assert [arm["weight"] for arm in report["arms"]] == [0.0, 2.0]
    assert report["priors"] == "off" and report["dataset"] == "demo" and report["code"]["commit"]
    for arm in report["arms"]:
        assert arm["changes"] == {"priors": "off"} and arm["steps"] > 0
        assert 0.0 <= arm["metrics"]["ndcg@10"]["mean"] <= 1.0
        # The teacher's weights were fitted on the calibration users, not left at their starting guess.
        assert list(arm["teacher_weights"]) == list(TEACHER)
        assert any(abs(arm["teacher_weights"][f] - START[f]) > 1e-3 for f in TEACHER)
    assert "| 2 |" in (tmp_path / "distill_hybrid.md").read_text()
