"""Two-process CPU training (gloo) through torchrun: ranks agree on weights, schedule and stop; only rank 0 writes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from coldstart_peft.labeled_pairs import write_pairs

WORKER = Path(__file__).parent / "workers" / "ddp_train.py"


@pytest.mark.slow
@pytest.mark.multiprocess
def test_two_process_training_keeps_ranks_identical(tiny_base, toy_task, tmp_path):
    train_groups, _ = toy_task
    pairs = write_pairs(tmp_path / "pairs.jsonl", train_groups[:64])
    out = tmp_path / "run"
    out.mkdir()
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
         str(WORKER), tiny_base, str(pairs), str(out)],
        capture_output=True, text=True, timeout=300, env=env,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    ranks = [json.loads((out / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["world"] for r in ranks] == [2, 2]
    assert all("MULTI_CPU" in r["distributed_type"] for r in ranks)
    assert ranks[0]["steps"] == ranks[1]["steps"] > 0
    assert ranks[0]["stopped_early"] and ranks[1]["stopped_early"], "the time budget, not the epochs, ended the run"
    assert ranks[0]["lrs"] == ranks[1]["lrs"], "both ranks follow one learning-rate sequence"
    assert len(ranks[0]["lrs"]) == ranks[0]["steps"]
    assert ranks[0]["checksum"] == ranks[1]["checksum"]
    written = sorted(p.name for p in out.iterdir())
    assert written == ["adapter", "rank0.json", "rank1.json"], "only rank 0 may save the adapter"
    assert (out / "adapter" / "adapter_model.safetensors").is_file()


@pytest.mark.slow
@pytest.mark.multiprocess
def test_train_command_runs_under_torchrun(tiny_base, toy_task, tmp_path):
    """The README's multi-process command, verbatim apart from the tiny base model."""
    pairs = write_pairs(tmp_path / "pairs.jsonl", toy_task[0][:16])
    out = tmp_path / "adapter"
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m",
         "coldstart_peft.cli", "train", "--pairs", str(pairs), "--out", str(out), "--base-model", tiny_base,
         "--max-steps", "2", "--no-progress"],
        capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert proc.stdout.count("adapter:") == 1, "only rank 0 reports and writes"
    assert (out / "coldstart.json").is_file()
