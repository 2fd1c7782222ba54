"""The prepared GPU checks (benchmarks/gpu/): the ~0.5B decoder's code path on a CPU with the tiny size, and what both refuse.

No timing is asserted; only what the report must hold and that the LoRA adapter stays small.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

GPU = Path(__file__).resolve().parents[2] / "benchmarks" / "gpu"


def _module(name: str):
    sys.path.insert(0, str(GPU))
    try:
        spec = importlib.util.spec_from_file_location(name, GPU / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(GPU))


def test_decoder_lora_check_runs_its_code_path_on_a_tiny_decoder(tmp_path):
    script = _module("decoder_lora")
    report = script.main(["--size", "tiny", "--allow-cpu", "--steps", "2", "--batch-size", "4", "--seq-len", "12",
                          "--out", str(tmp_path)])  # fmt: skip
    written = json.loads((tmp_path / "decoder_lora.json").read_text())
    assert written.pop("format") and written == report
    assert report["steps"] == 2 and report["trained_precision"] == "fp32" and report["peak_memory_gib"] is None
    assert report["prompt_tokens"] > 8 * 12 and report["tokens_per_s"] > 0
    assert 0 < report["trainable_params"] < report["base_params"] and report["adapter_bytes"] > 0
    assert report["loss_first"] is not None and report["loss_last"] is not None
    assert script.SIZES["0.5b"]["num_hidden_layers"] == 24  # the GPU run's shape: Qwen2.5-0.5B's


def test_decoder_lora_check_refuses_an_out_folder_it_did_not_write(tmp_path):
    from coldstart_peft.errors import OverwriteRefusedError

    script = _module("decoder_lora")
    (tmp_path / "base").mkdir()
    (tmp_path / "base" / "mine.txt").write_text("keep")
    with pytest.raises(OverwriteRefusedError, match="did not write"):
        script.main(["--size", "tiny", "--allow-cpu", "--steps", "1", "--batch-size", "2", "--out", str(tmp_path)])
    assert (tmp_path / "base" / "mine.txt").read_text() == "keep" and not (tmp_path / "decoder_lora.json").exists()


def test_fsdp_check_script_parses_and_its_pairs_file_reads_back(tmp_path):
    from coldstart_peft.labeled_pairs import read_pairs

    assert subprocess.run(["bash", "-n", str(GPU / "run_decoder_checks.sh")]).returncode == 0
    assert subprocess.run([sys.executable, str(GPU / "fsdp_pairs.py"), str(tmp_path / "p.jsonl")]).returncode == 0
    pairs = read_pairs(tmp_path / "p.jsonl")
    assert len(pairs) == 64 and {p.label for p in pairs} == {0.0, 1.0}


def test_gpu_path_check_refuses_a_report_it_did_not_write_before_looking_for_a_gpu(tmp_path):
    from coldstart_peft.errors import OverwriteRefusedError

    (tmp_path / "gpu_check.json").write_text('{"mine": 1}')
    with pytest.raises(OverwriteRefusedError, match="not a file this library wrote"):
        _module("check_gpu_path").main(["--out", str(tmp_path)])
    assert (tmp_path / "gpu_check.json").read_text() == '{"mine": 1}'
