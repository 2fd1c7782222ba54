"""LoRA+: the B matrices train at the configured multiple of the method's learning rate, through the engine's hook."""

from __future__ import annotations

import pytest
import torch

from coldstart_peft import PluginError, TrainConfig, apply_method, build_scorer, create_host, make_method, train

HOST = create_host(load_entrypoints=False)


def _first_step_moves(tiny_base, toy_task, method) -> dict[str, float]:
    """The largest change of each kind of LoRA matrix after one optimizer step."""
    torch.manual_seed(0)
    scorer = build_scorer("bi-encoder", tiny_base, {"max_length": 32}, host=HOST)
    apply_method(scorer, method)
    before = {n: p.detach().clone() for n, p in scorer.backbone.named_parameters() if p.requires_grad}
    train(scorer, scorer.method, toy_task[0], config=TrainConfig(max_steps=1, batch_size=8, lr=1e-3, warmup_ratio=0.0,
                                                                 progress=False, precision="fp32", seed=0))  # fmt: skip
    moved = {"lora_A": 0.0, "lora_B": 0.0}
    for name, parameter in scorer.backbone.named_parameters():
        if name in before:
            kind = "lora_B" if ".lora_B." in name else "lora_A"
            moved[kind] = max(moved[kind], (parameter.detach() - before[name]).abs().max().item())
    return moved


def test_the_b_matrices_take_the_ratio_times_the_learning_rate(tiny_base, toy_task):
    plain = _first_step_moves(tiny_base, toy_task, make_method("lora"))
    plus = _first_step_moves(tiny_base, toy_task, make_method("lora", {"loraplus_lr_ratio": 16}))
    # B starts at zero, so only B has a gradient at the first step, and Adam's first step moves each
    # weight by its learning rate: the largest move is the rate itself.
    assert plain["lora_B"] == pytest.approx(1e-3, rel=1e-3) and plus["lora_B"] == pytest.approx(16e-3, rel=1e-3)
    assert plain["lora_A"] == plus["lora_A"] == 0.0


def test_a_method_giving_a_parameter_no_positive_scale_is_refused_by_name(tiny_base, toy_task):
    lora = HOST.method("lora")

    class Frozen(lora):
        name = "frozen-b"

        def learning_rate_scale(self, name):
            return 0.0 if ".lora_B." in name else 1.0

    scorer = build_scorer("bi-encoder", tiny_base, {"max_length": 32}, host=HOST)
    apply_method(scorer, Frozen())
    with pytest.raises(PluginError, match="method 'frozen-b' gave backbone.*lora_B.*learning-rate scale of 0.0"):
        train(scorer, scorer.method, toy_task[0], config=TrainConfig(max_steps=1, batch_size=8, progress=False, precision="fp32"))
