"""Small helpers shared by the per-method trap tests (tiny models only)."""

from __future__ import annotations

import torch

from coldstart_peft import TrainConfig, apply_method, build_scorer, create_host, train
from coldstart_peft.training import plan_steps

HOST = create_host(load_entrypoints=False)
SCORER_CONFIG = {"max_length": 48, "dropout": 0.0}
PROBE_USERS = ["likes red lipstick ; clicked red soap"] * 3 + ["likes blue cream"]
PROBE_ITEMS = ["red cream", "blue soap", "gold brush perfume", "blue cream"]


def prepared(tiny_base, name, config=None, total_steps=100):
    """A cross-encoder on the tiny base with method ``name`` applied."""
    torch.manual_seed(0)
    scorer = build_scorer("cross-encoder", tiny_base, SCORER_CONFIG, host=HOST)
    method = HOST.method(name)(config)
    apply_method(scorer, method, total_steps=total_steps)
    return scorer, method


def trained(tiny_base, name, groups, config=None, epochs=1):
    """Train method ``name`` on ``groups`` through the engine; return (scorer, method, result)."""
    train_config = TrainConfig(epochs=epochs, batch_size=8, lr=5e-3, seed=0, progress=False, precision="fp32")
    scorer, method = prepared(tiny_base, name, config, total_steps=plan_steps(len(groups), train_config))
    result = train(scorer, method, groups, None, train_config)
    return scorer, method, result


def scores(scorer):
    """fp32 scores of the probe pairs."""
    scorer.precision = "fp32"
    return scorer.score(PROBE_USERS, PROBE_ITEMS).tolist()


def perturb(model, std=0.05):
    """Move every trainable weight off its initial value, so identity-valued tensors cannot hide."""
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for parameter in model.parameters():
            if parameter.requires_grad:
                parameter.add_(torch.randn(parameter.shape, generator=generator) * std)
