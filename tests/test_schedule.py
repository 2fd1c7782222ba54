"""The learning rate of every parameter group follows one planned curve, with or without a time budget."""

from __future__ import annotations

import math

import pytest
import torch

from coldstart_peft import TrainConfig, apply_method, build_scorer, create_host, train
from coldstart_peft import training as engine
from coldstart_peft.priors import Priors
from coldstart_peft.schedule import SCHEDULES, lr_factor, progress

HOST = create_host(load_entrypoints=False)
RECIPE = {"max_length": 32}


def test_the_curve_warms_up_then_decays_to_zero():
    assert lr_factor(0.0, 0.1) == pytest.approx(1e-3)
    assert lr_factor(0.05, 0.1) == pytest.approx(0.5)
    assert lr_factor(0.1, 0.1) == pytest.approx(1.0)
    assert lr_factor(0.55, 0.1) == pytest.approx(0.5)
    assert lr_factor(1.0, 0.1) == 0.0
    assert lr_factor(0.55, 0.1, "cosine") == pytest.approx(0.5)
    assert lr_factor(0.7, 0.1, "constant_with_warmup") == lr_factor(0.0, 0.0, "constant") == 1.0
    for kind in SCHEDULES:
        values = [lr_factor(p / 100, 0.1, kind) for p in range(10, 101)]
        assert all(a >= b for a, b in zip(values, values[1:])), f"{kind} rises after warm-up"


def test_progress_is_the_larger_of_steps_and_time():
    assert progress(3, 30) == pytest.approx(0.1)
    assert progress(3, 30, elapsed_s=10.0, budget_s=20.0) == pytest.approx(0.5)
    assert progress(29, 30, elapsed_s=1.0, budget_s=20.0) == pytest.approx(29 / 30)
    assert progress(40, 30) == 1.0


def _run(tiny_base, toy_task, monkeypatch, **config):
    """Train the default recipe's scorer, recording every group's lr and the clock at each step."""
    torch.manual_seed(0)
    scorer = build_scorer("bi-encoder", tiny_base, RECIPE, host=HOST)
    scorer.attach_priors(Priors())  # the default recipe's three parameter groups: adapter, head, priors
    method = HOST.method("lora")()
    apply_method(scorer, method, total_steps=30)
    seen: list[tuple[float, list[float]]] = []
    now = {"t": 0.0}
    real_step = torch.optim.AdamW.step

    def recording_step(self, *args, **kwargs):
        seen.append((now["t"], [g["lr"] for g in self.param_groups]))
        now["t"] += 1.0  # each optimizer step takes one second of the fake clock
        return real_step(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.AdamW, "step", recording_step)
    monkeypatch.setattr(engine, "clock", lambda: now["t"])
    settings = TrainConfig(epochs=5, max_steps=30, batch_size=8, lr=1e-3, head_lr=2e-3, prior_lr=0.05,
                           warmup_ratio=0.1, progress=False, precision="fp32", **config)  # fmt: skip
    result = train(scorer, method, toy_task[0], None, settings)
    return seen, result, [1e-3, 2e-3, 0.05]


def test_every_group_follows_the_planned_curve(tiny_base, toy_task, monkeypatch):
    seen, result, base = _run(tiny_base, toy_task, monkeypatch)
    assert result.steps == len(seen) == 30
    assert len(seen[0][1]) == 3, "backbone, head and prior groups"
    for step, (_, lrs) in enumerate(seen):
        factor = lr_factor(step / 30, 0.1)
        assert lrs == pytest.approx([b * factor for b in base], rel=1e-9), f"step {step}"
    assert seen[-1][1][0] > 0, "the last planned step still moves the weights"


def test_a_time_budget_compresses_the_same_curve(tiny_base, toy_task, monkeypatch):
    seen, result, base = _run(tiny_base, toy_task, monkeypatch, time_budget_s=20.0)
    # The fake clock reads s seconds before step s; the run stops once a step began past 20 s.
    assert result.steps == len(seen) == 22 and result.stopped_early
    for step, (elapsed, lrs) in enumerate(seen):
        factor = lr_factor(min(1.0, max(step / 30, elapsed / 20.0)), 0.1)
        assert lrs == pytest.approx([b * factor for b in base], rel=1e-9), f"step {step}"
    assert math.isclose(seen[20][1][0], 0.0, abs_tol=1e-12), "decayed to zero when the budget ran out"


def test_the_method_trains_at_lr_when_set_and_at_its_recommended_rate_otherwise():
    from types import SimpleNamespace

    method = SimpleNamespace(recommended_lr=2e-3)
    assert TrainConfig().method_lr(method) == 2e-3
    assert TrainConfig(lr=5e-4).method_lr(method) == 5e-4
