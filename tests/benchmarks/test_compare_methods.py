"""The method comparison benchmark, smoke preset on the demo shop: schema, table and plot."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "compare_methods.py"


@pytest.mark.slow
def test_smoke_preset_writes_the_promised_files(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--dataset", "demo", "--preset", "smoke", "--methods",
         "popularity,zero-shot,lora,prompt", "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads((tmp_path / "results.json").read_text())
    assert set(results["machine"]) >= {"cpu", "cores", "gpu", "torch", "transformers", "peft"}
    assert isinstance(results["machine"]["cores"], int)
    assert results["dataset"] == "demo" and results["split"] == "cold-user" and results["preset"] == "smoke"
    assert results["protocol"] == {"k_context": 3, "n_negatives": 99, "n_test_users": 40}
    assert len(results["data_fingerprint"]) == 16 and len(results["split_fingerprint"]) == 16
    audit = results["audit"]
    assert audit["cases"] == 40 and all(0.0 <= audit[k] <= 1.0 for k in audit if k != "cases")
    assert "audit of the test targets" in proc.stdout and results["code"]["commit"]
    rows = {r["method"]: r for r in results["results"]}
    assert set(rows) == {"popularity", "zero-shot", "lora", "prompt"}
    keys = {"method", "scorer", "trainable_params", "trainable_pct", "adapter_bytes", "train_seconds",
            "train_pairs_per_s", "score_pairs_per_s", "peak_rss_mb", "metrics"}  # fmt: skip
    for row in rows.values():
        assert keys <= set(row)
        assert set(row["metrics"]) == {"ndcg@10", "hr@10", "mrr", "auc"}
        assert all(0.0 <= v <= 1.0 for v in row["metrics"].values())
    assert rows["popularity"]["trainable_params"] == 0 and rows["zero-shot"]["adapter_bytes"] == 0
    assert 0 < rows["prompt"]["trainable_params"] < rows["lora"]["trainable_params"]
    assert rows["lora"]["adapter_bytes"] > 0 and rows["lora"]["train_seconds"] > 0
    assert results["settings"]["train_negatives"] == 1  # the bi-encoder's default, resolved
    # The whole run includes every method's training, so it cannot be shorter than their sum.
    assert results["wall_seconds"] >= sum(r["train_seconds"] for r in rows.values())
    table = (tmp_path / "results.md").read_text()
    ndcgs = [float(line.split("|")[3].split()[0]) for line in table.splitlines() if line.startswith("| ") and "NDCG" not in line]
    assert ndcgs == sorted(ndcgs, reverse=True) and len(ndcgs) == 4
    assert (tmp_path / "pareto.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
