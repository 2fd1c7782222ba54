"""``auto`` precision follows what the hardware computes natively, in training and in scoring."""

from __future__ import annotations

import json

import pytest
import torch

from coldstart_peft import ConfigError, TrainConfig, apply_method, build_scorer, create_host, save_adapter
from coldstart_peft import hardware
from coldstart_peft.hardware import resolve_precision
from coldstart_peft.scorer import inference_autocast
from coldstart_peft.training import make_accelerator

HOST = create_host(load_entrypoints=False)


CPUS = {  # (bf16 instructions, measured bf16 speedup): what auto should pick
    "fast-native-bf16": ((True, 1.5), True),
    "slow-native-bf16": ((True, 0.6), False),
    "no-native-bf16": ((False, None), False),
}


@pytest.fixture(params=list(CPUS), ids=list(CPUS))
def native(request, monkeypatch):
    """The capability probe and the timed block patched; the value is whether bf16 should win."""
    (instructions, speedup), wins = CPUS[request.param]
    monkeypatch.setattr(hardware, "native_cpu_bf16", lambda: instructions)
    monkeypatch.setattr(hardware, "cpu_bf16_speedup", lambda: speedup)
    return wins


def test_auto_on_a_cpu_is_bf16_only_where_native_and_faster(native):
    choice = resolve_precision("auto", "cpu")
    assert choice.name == ("bf16" if native else "fp32")
    assert ("fp32's speed" in choice.reason) == (hardware.native_cpu_bf16())
    assert choice.accelerate == ("bf16" if native else "no")


def test_without_bf16_instructions_nothing_is_timed(monkeypatch):
    monkeypatch.setattr(hardware, "native_cpu_bf16", lambda: False)
    monkeypatch.setattr(hardware, "_block_runs", lambda: pytest.fail("timed a block on a CPU without bf16"))
    hardware.cpu_bf16_speedup.cache_clear()
    try:
        assert hardware.cpu_bf16_speedup() is None
        assert resolve_precision("auto", "cpu").name == "fp32"
    finally:
        hardware.cpu_bf16_speedup.cache_clear()


def test_the_timed_block_decides_between_fp32_and_bf16(monkeypatch):
    monkeypatch.setattr(hardware, "native_cpu_bf16", lambda: True)
    # Each side's fastest run decides: a load spike during one fp32 run (3.0 s) changes nothing.
    for fp32_s, bf16_s, expected in (([1.0, 3.0, 1.1], [0.5, 0.6, 0.5], "bf16"), ([0.6, 3.0, 0.6], [1.0, 1.0, 1.1], "fp32")):
        monkeypatch.setattr(hardware, "_block_runs", lambda a=fp32_s, b=bf16_s: (a, b))
        hardware.cpu_bf16_speedup.cache_clear()
        try:
            assert resolve_precision("auto", "cpu").name == expected
        finally:
            hardware.cpu_bf16_speedup.cache_clear()


def test_training_follows_the_probe(native):
    accelerator = make_accelerator(TrainConfig(progress=False))
    assert str(accelerator.mixed_precision) == ("bf16" if native else "no")


def test_scoring_follows_the_probe(native):
    with inference_autocast("auto", torch.device("cpu")):
        dtype = (torch.ones(2, 2) @ torch.ones(2, 2)).dtype
    assert dtype == (torch.bfloat16 if native else torch.float32)


def test_explicit_choices_win_over_the_probe(native):
    assert resolve_precision("fp32", "cpu").name == "fp32"
    assert resolve_precision("no", "cpu").name == "fp32"
    assert resolve_precision("bf16", "cpu").name == "bf16"
    with inference_autocast("fp32", torch.device("cpu")):
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.float32


def test_unusable_precisions_are_named_errors():
    with pytest.raises(ConfigError, match="fp16 runs on GPUs only"):
        resolve_precision("fp16", "cpu")
    with pytest.raises(ConfigError, match="unknown precision"):
        resolve_precision("fp8", "cpu")
    with pytest.raises(ConfigError, match="scheduler"):
        TrainConfig(scheduler="polynomial-ish").validate()


def test_the_emulated_capability_turns_native_bf16_off(monkeypatch):
    """An AVX512-BF16 CPU whose ATen kernels dispatch at AVX2 computes bf16 slowly: not native."""
    hardware.native_cpu_bf16.cache_clear()
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AVX2")
    monkeypatch.setattr(hardware.platform, "machine", lambda: "x86_64")
    try:
        assert hardware.native_cpu_bf16() is False
    finally:
        hardware.native_cpu_bf16.cache_clear()


def test_manifests_record_precision_and_hardware(tiny_base, tmp_path):
    scorer = build_scorer("bi-encoder", tiny_base, {"max_length": 32}, host=HOST)
    apply_method(scorer, HOST.method("lora")())
    scorer.precision = "fp32"
    folder = save_adapter(scorer, tmp_path / "adapter")
    manifest = json.loads((folder / "coldstart.json").read_text())
    assert manifest["precision"] == "fp32"
    facts = manifest["environment"]["hardware"]
    assert facts["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert facts["native_cpu_bf16"] == hardware.native_cpu_bf16()
    assert facts["cpu_model"]
