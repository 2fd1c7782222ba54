"""The calibration-protocol probe (benchmarks/probes/calibration_protocol.py) runs end to end on the demo shop."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from _scripts import BENCHMARKS


@pytest.mark.slow
def test_the_probe_fits_the_weights_four_ways_and_scores_each_on_three_protocols(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(BENCHMARKS / "probes" / "calibration_protocol.py"), "--dataset", "demo", "--seconds", "3",
         "--calibration-users", "40", "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads((tmp_path / "calibration_protocol.json").read_text())
    arms = {(arm["model"], arm["calibration"]): arm for arm in report["arms"]}
    assert list(arms) == [("lora", "none"), ("lora", "uniform"), ("lora", "popularity"), ("lora", "both"),
                          ("hybrid+cooc", "uniform"), ("hybrid+cooc", "popularity")]  # fmt: skip
    assert report["steps"] > 0 and report["code"]["commit"] and report["dataset"] == "demo"
    for arm in report["arms"]:
        assert arm["held_out_users"] > 0
        assert set(arm["ndcg@10"]) == {"uniform", "popularity", "full catalog"}
        assert all(0.0 <= v["low"] <= v["mean"] <= v["high"] <= 1.0 for v in arm["ndcg@10"].values())
    # Each fit starts from the weights training left, so a fit on other cases lands elsewhere.
    fitted = [arms[("lora", how)]["weights"] for how in ("none", "uniform", "popularity")]
    assert fitted[0] != fitted[1] and fitted[1] != fitted[2]
    assert "| hybrid+cooc | popularity |" in (tmp_path / "calibration_protocol.md").read_text()
