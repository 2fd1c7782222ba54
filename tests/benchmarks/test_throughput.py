"""The throughput benchmark, quick sizes on a tiny random BERT: what it records and how it sets the HF scripts up.

No timing is asserted: only that every rate is a positive finite number, that each ratio and
factor is the quotient of the rates it names, that the machine, the code and the precision
decisions are recorded, and that the competent HF script turns bf16 on exactly where the
hardware computes it natively.
"""

from __future__ import annotations

import json
import math
import statistics
import subprocess

import pytest
import torch

from _scripts import BENCHMARKS, load_benchmark
from coldstart_peft.outputs import MARKDOWN_MARK

SCRIPT = BENCHMARKS / "throughput.py"


def load_script():
    return load_benchmark("throughput.py", "throughput_benchmark")


def positive(value) -> bool:
    return isinstance(value, float) and math.isfinite(value) and value > 0


def check_rate(row: dict, repeats: int) -> None:
    assert positive(row["pairs_per_s"])
    assert len(row["samples"]) == repeats and all(positive(v) for v in row["samples"])
    assert row["pairs_per_s"] == pytest.approx(statistics.median(row["samples"]))


def check_features(block: dict, on: dict, repeats: int, names: set[str]) -> None:
    assert set(block["features"]) == names
    for row in block["features"].values():
        assert positive(row["off_pairs_per_s"]) and len(row["off_samples"]) == repeats
        assert row["factor"] == pytest.approx(on["pairs_per_s"] / row["off_pairs_per_s"])


@pytest.fixture(scope="module")
def quick_report(tiny_base, tmp_path_factory):
    """One quick run in this process (a few seconds instead of a fresh interpreter's imports)."""
    import transformers

    script = load_script()
    out = tmp_path_factory.mktemp("throughput")
    threads, verbosity = torch.get_num_threads(), transformers.logging.get_verbosity()
    bars = transformers.utils.logging.is_progress_bar_enabled()
    try:
        code = script.main(["--quick", "--dataset", "demo", "--base-model", tiny_base, "--max-length", "64",
                            "--threads", "1", "--out", str(out)])  # fmt: skip
    finally:  # main sets these for the whole process; later tests expect the session's values
        torch.set_num_threads(threads)
        transformers.logging.set_verbosity(verbosity)
        if bars:
            transformers.utils.logging.enable_progress_bar()
        script.fresh_accelerate()
    assert code == 0
    return json.loads((out / "throughput.json").read_text()), (out / "throughput.md").read_text()


def test_quick_run_records_machine_code_and_settings(quick_report):
    from coldstart_peft.hardware import hardware_facts

    report, _ = quick_report
    assert set(report) == {"format", "machine", "code", "precision_auto", "settings", "data", "training", "scoring"}
    machine = report["machine"]
    assert {k: machine[k] for k in hardware_facts()} == hardware_facts()
    assert set(machine) >= {"cores", "torch", "transformers", "peft", "accelerate", "torch_threads", "device",
                            "load_average_start", "load_average_end"}  # fmt: skip
    assert machine["torch_threads"] == 1 and machine["torch"] == torch.__version__
    head = subprocess.run(["git", "-C", str(SCRIPT.parent), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    if head.returncode == 0:  # a checkout; an unpacked sdist records None for both
        assert report["code"]["commit"] == head.stdout.strip() and isinstance(report["code"]["dirty"], bool)

    settings = report["settings"]
    assert settings["dataset"] == "demo" and settings["quick"] is True and settings["max_length"] == 64
    assert settings["scorer"] == "cross-encoder"
    assert settings["batch_pairs"] == settings["engine_batch_groups"] * settings["items_per_group"]
    assert settings["method"]["lora"]["r"] == 8
    assert report["data"]["train"]["pairs"] == (settings["steps"] + settings["warmup"]) * settings["batch_pairs"]
    assert report["data"]["score"]["pairs"] == settings["score_pairs"]
    for part in report["data"].values():
        assert positive(part["mean_tokens"]) and 0.0 <= part["truncated_share"] <= 1.0


def test_quick_run_measures_ours_and_both_hf_scripts(quick_report):
    from coldstart_peft.hardware import native_cpu_bf16, resolve_precision

    report, _ = quick_report
    repeats = report["settings"]["repeats"]
    auto = resolve_precision("auto", "cuda" if torch.cuda.is_available() else "cpu")  # "cpu" on the test machines
    assert report["precision_auto"] == {"name": auto.name, "reason": auto.reason}

    training = report["training"]
    check_rate(training["ours"], repeats)
    for name in ("hf_competent", "hf_naive"):
        check_rate(training[name], repeats)
        assert training["ratios"][f"vs_{name}"] == pytest.approx(training["ours"]["pairs_per_s"] / training[name]["pairs_per_s"])
    assert training["ours"]["precision"] == auto.name  # what the engine reported it trained in
    # A competent script turns bf16 on wherever the CPU has it; auto also checks that it pays off.
    assert training["hf_competent"]["precision"] == ("bf16" if native_cpu_bf16() else "fp32")
    assert training["hf_naive"]["precision"] == "fp32"  # the Trainer's default, not a precision left over
    assert training["hf_competent"]["batches"] == "group_by_length" and training["hf_naive"]["padding"] == "max_length 64"
    check_features(training, training["ours"], repeats,
                   {"precision", "dynamic_padding", "lora_dropout", "length_blocks", "backbone_dropout"})  # fmt: skip
    assert training["ours"]["lora_dropout"] == 0.0 and training["features"]["lora_dropout"]["other"] == 0.05
    assert training["ours"]["backbone_dropout"] == 0.0  # the library's default, recorded from the scorer that trained
    ablation = training["features"]["precision"]
    assert (ablation["auto"], ablation["reason"]) == (auto.name, auto.reason)
    assert ablation["other"] == ("bf16" if auto.name == "fp32" else "fp32")

    scoring = report["scoring"]
    for name in ("ours", "ours_as_trained", "hf_competent", "hf_competent_merged", "hf_naive"):
        check_rate(scoring[name], repeats)
    assert scoring["ours"]["precision"] == auto.name and scoring["hf_naive"]["precision"] == "fp32"
    ratios = scoring["ratios"]
    assert ratios["vs_hf_competent"] == pytest.approx(scoring["ours"]["pairs_per_s"] / scoring["hf_competent"]["pairs_per_s"])
    assert ratios["vs_hf_naive"] == pytest.approx(scoring["ours"]["pairs_per_s"] / scoring["hf_naive"]["pairs_per_s"])
    assert ratios["vs_hf_competent_merged"] == pytest.approx(
        scoring["ours"]["pairs_per_s"] / scoring["hf_competent_merged"]["pairs_per_s"]
    )
    assert ratios["as_trained_vs_hf_competent"] == pytest.approx(
        scoring["ours_as_trained"]["pairs_per_s"] / scoring["hf_competent"]["pairs_per_s"]
    )
    check_features(scoring, scoring["ours"], repeats, {"precision", "length_sorting", "dynamic_padding", "merged_weights"})
    assert scoring["features"]["merged_weights"]["off_pairs_per_s"] == scoring["ours_as_trained"]["pairs_per_s"]


def test_quick_run_writes_the_markdown_table(quick_report):
    report, table = quick_report
    title = table.splitlines()[1]  # under the report mark
    assert table.splitlines()[0] == MARKDOWN_MARK
    assert report["machine"]["cpu_model"] in title and report["machine"]["cpu_capability"] in title
    assert f"commit {report['code']['commit'] or 'unknown'}" in table and report["precision_auto"]["reason"] in table
    assert "hf-competent" in table and "hf-naive" in table
    for block in ("training", "scoring"):
        for ratio in report[block]["ratios"].values():
            assert f"{ratio:.2f}x" in table
    assert table.count("| training |") == 2 + 5 and table.count("| scoring |") == 4 + 4  # comparisons + ablations


@pytest.mark.parametrize("native", [False, True])
def test_competent_script_uses_bf16_only_where_native(monkeypatch, tmp_path, native):
    """Its TrainingArguments follow the hardware probe; timings play no part."""
    from coldstart_peft import hardware

    script = load_script()
    monkeypatch.setattr(hardware, "native_cpu_bf16", lambda: native)
    try:
        arguments = script.competent_training_args(str(tmp_path), batch_size=8, max_steps=3, device_type="cpu")
    finally:
        script.fresh_accelerate()  # building TrainingArguments sets up Accelerate's process state
    assert arguments.bf16 is native and arguments.use_cpu is True
    assert getattr(arguments, "train_sampling_strategy", None) == "group_by_length" or getattr(arguments, "group_by_length", False)
    assert (arguments.report_to in ([], "none", ["none"])) and arguments.save_strategy == "no"
    naive = script.naive_training_args(str(tmp_path), batch_size=8, max_steps=3)
    assert naive.bf16 is False and getattr(naive, "train_sampling_strategy", "random") == "random"


def test_fixed_padding_pads_to_max_length(tiny_base):
    """The switch behind the "dynamic padding off" figures really pads every batch to the budget."""
    from coldstart_peft.backbone import load_tokenizer

    script = load_script()
    tokenizer = script.FixedPadding(load_tokenizer(tiny_base), 24)
    tokenizer.truncation_side = "left"
    assert tokenizer.truncation_side == "left"
    batch = tokenizer(["red"], ["blue brush"], padding="longest", truncation="only_first", max_length=24, return_tensors="pt")
    assert batch["input_ids"].shape == (1, 24)
