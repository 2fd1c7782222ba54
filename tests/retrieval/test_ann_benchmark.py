"""benchmarks/ann.py at a tiny size: what it records, and that its recall is measured against exact search.

No timing is asserted: only that latencies are positive, that scanning every inverted list
gives recall 1 (the ANN candidates are then exactly rescored over the whole catalog), and that
the machine, the versions and the commit are recorded.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

pytest.importorskip("faiss")

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "ann.py"


def load_script():
    spec = importlib.util.spec_from_file_location("ann_benchmark", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_tiny_run_records_recall_latency_and_provenance(tmp_path, monkeypatch):
    script = load_script()
    # The library's environment probe is tested on its own and takes seconds; the script's own fields stay real.
    monkeypatch.setattr(script, "environment_info", lambda: {"hardware": {"cpu_model": "probe skipped"}})
    items = 3000
    lists = script.ann.default_lists(items)
    monkeypatch.setattr(sys, "argv", [
        "ann.py", "--items", str(items), "--dim", "16", "--queries", "70", "--exact-queries", "5", "--batch", "32",
        "--k", "20", "--configs", f"IVF{{lists}},Flat:1,{lists}", "--label", "test", "--out", str(tmp_path),
    ])  # fmt: skip
    script.main()
    report = json.loads((tmp_path / "ann.json").read_text())
    assert (tmp_path / "ann.md").read_text().count("\n| ") == 1 + 1 + 2  # header, exact, two nprobe settings
    exact, few, every = report["results"]
    assert exact["index"] == "exact" and exact["batch1_ms"]["n"] == 5
    assert few["setting"] == "nprobe=1" and every["setting"] == f"nprobe={lists}" and every["index"] == f"IVF{lists},Flat"
    assert every["recall_at_k"] == 1.0  # every list scanned: the exact top-k, so the recall code agrees with exact
    assert 0.0 < few["recall_at_k"] < 1.0  # one list of a clustered catalog misses neighbours in the others
    for row in (exact, few, every):
        assert row["batch1_ms"]["median"] > 0 and row["batch1_ms"]["p95"] >= row["batch1_ms"]["median"]
        assert row["batch32_ms"]["n"] == 70 // 32
    assert few["build_s"] > 0 and few["index_mib"] > 0
    machine = report["machine_start"]
    assert machine["faiss"] and machine["cpu_capability"] and machine["torch"] and machine["cpu_model"] == "probe skipped"
    assert "commit" in report["git"] and report["settings"]["label"] == "test"
