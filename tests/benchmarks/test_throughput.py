"""The throughput benchmark, quick sizes on a tiny random BERT: schema of the JSON, the markdown file.

No timing is asserted: only that every rate is a positive finite number and that each ratio and
factor is the quotient of the rates it names.
"""

from __future__ import annotations

import importlib.util
import json
import math
import statistics
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "throughput.py"


def load_script():
    spec = importlib.util.spec_from_file_location("throughput_benchmark", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def positive(value) -> bool:
    return isinstance(value, float) and math.isfinite(value) and value > 0


def check_rate(row: dict, repeats: int) -> None:
    assert positive(row["pairs_per_s"])
    assert len(row["samples"]) == repeats and all(positive(v) for v in row["samples"])
    assert row["pairs_per_s"] == pytest.approx(statistics.median(row["samples"]))


def test_quick_run_writes_the_promised_files(tiny_base, tmp_path):
    import transformers

    script = load_script()
    threads, verbosity = torch.get_num_threads(), transformers.logging.get_verbosity()
    bars = transformers.utils.logging.is_progress_bar_enabled()
    try:  # in this process: a few seconds instead of a fresh interpreter's imports
        code = script.main(["--quick", "--dataset", "demo", "--base-model", tiny_base, "--max-length", "64",
                            "--threads", "1", "--out", str(tmp_path)])  # fmt: skip
    finally:  # main sets these for the whole process; later tests expect the session's values
        torch.set_num_threads(threads)
        transformers.logging.set_verbosity(verbosity)
        if bars:
            transformers.utils.logging.enable_progress_bar()
    assert code == 0
    report = json.loads((tmp_path / "throughput.json").read_text())
    assert set(report) == {"machine", "settings", "data", "training", "scoring"}
    assert set(report["machine"]) >= {"cpu", "cores", "gpu", "torch", "transformers", "peft", "torch_threads",
                                      "load_average_start", "load_average_end"}  # fmt: skip
    assert report["machine"]["torch_threads"] == 1

    settings = report["settings"]
    assert settings["dataset"] == "demo" and settings["quick"] is True and settings["max_length"] == 64
    assert settings["batch_pairs"] == settings["engine_batch_groups"] * settings["items_per_group"]
    assert settings["method"]["lora"]["r"] == 8
    repeats = settings["repeats"]
    assert report["data"]["train"]["pairs"] == (settings["steps"] + settings["warmup"]) * settings["batch_pairs"]
    assert report["data"]["score"]["pairs"] == settings["score_pairs"]
    for part in report["data"].values():
        assert positive(part["mean_tokens"]) and 0.0 <= part["truncated_share"] <= 1.0

    training = report["training"]
    check_rate(training["ours"], repeats)
    check_rate(training["hf_trainer"], repeats)
    assert training["hf_trainer"]["precision"] == "fp32"  # the Trainer's default, not our bf16 left over
    assert training["ratio"] == pytest.approx(training["ours"]["pairs_per_s"] / training["hf_trainer"]["pairs_per_s"])
    assert set(training["features"]) == {"bf16_autocast", "dynamic_padding"}
    for row in training["features"].values():
        assert positive(row["off_pairs_per_s"]) and len(row["off_samples"]) == repeats
        assert row["factor"] == pytest.approx(training["ours"]["pairs_per_s"] / row["off_pairs_per_s"])

    scoring = report["scoring"]
    for name in ("ours", "ours_merged", "hf_loop"):
        check_rate(scoring[name], repeats)
    assert scoring["ratio"] == pytest.approx(scoring["ours"]["pairs_per_s"] / scoring["hf_loop"]["pairs_per_s"])
    assert scoring["ratio_merged"] == pytest.approx(scoring["ours_merged"]["pairs_per_s"] / scoring["hf_loop"]["pairs_per_s"])
    assert set(scoring["features"]) == {"bf16_autocast", "length_sorting", "dynamic_padding", "merged_weights"}
    for row in scoring["features"].values():
        assert positive(row["off_pairs_per_s"]) and len(row["off_samples"]) == repeats
        assert row["factor"] == pytest.approx(scoring["ours_merged"]["pairs_per_s"] / row["off_pairs_per_s"])
    assert scoring["features"]["merged_weights"]["off_pairs_per_s"] == scoring["ours"]["pairs_per_s"]

    table = (tmp_path / "throughput.md").read_text()
    assert "ours / HF" in table and report["machine"]["cpu"] in table
    assert f"{training['ratio']:.2f}x" in table and f"{scoring['ratio']:.2f}x" in table
    assert table.count("| training |") == 2 and table.count("| scoring |") == 4


def test_fixed_padding_pads_to_max_length(tiny_base):
    """The switch behind the "dynamic padding off" figures really pads every batch to the budget."""
    from coldstart_peft.backbone import load_tokenizer

    script = load_script()
    tokenizer = script.FixedPadding(load_tokenizer(tiny_base), 24)
    tokenizer.truncation_side = "left"
    assert tokenizer.truncation_side == "left"
    batch = tokenizer(["red"], ["blue brush"], padding="longest", truncation="only_first", max_length=24, return_tensors="pt")
    assert batch["input_ids"].shape == (1, 24)
