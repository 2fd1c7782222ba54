"""ScorerConfig.backbone_dropout: the backbone's own dropout while training, apart from a method's."""

from __future__ import annotations

import pytest
import torch

from coldstart_peft import apply_method, build_scorer, make_method
from coldstart_peft.errors import ConfigError

USERS = ["bought red lipstick ; blue soap"] * 4
ITEMS = ["red brush", "blue cream", "pink soap", "gold perfume"]


def rates(module: torch.nn.Module) -> set[float]:
    return {m.p for m in module.modules() if isinstance(m, torch.nn.Dropout)}


def train_mode_logits(scorer) -> torch.Tensor:
    scorer.train()
    with torch.no_grad():
        return scorer.forward_pairs(USERS, ITEMS)


@pytest.mark.parametrize("scorer_name", ["cross-encoder", "bi-encoder"])
def test_zero_backbone_dropout_makes_training_forwards_deterministic(tiny_base, scorer_name):
    own = {"max_length": 32, **({"dropout": 0.0} if scorer_name == "cross-encoder" else {})}  # no head dropout
    noisy = build_scorer(scorer_name, tiny_base, {**own, "backbone_dropout": None})
    assert rates(noisy.backbone) == {0.1}  # the tiny BERT's config
    torch.manual_seed(0)
    assert not torch.allclose(train_mode_logits(noisy), train_mode_logits(noisy))

    quiet = build_scorer(scorer_name, tiny_base, {**own, "backbone_dropout": 0.0})
    assert rates(quiet.backbone) == {0.0}
    torch.manual_seed(0)
    assert torch.allclose(train_mode_logits(quiet), train_mode_logits(quiet), atol=1e-6)


def test_a_methods_own_dropout_keeps_its_rate(tiny_base):
    scorer = build_scorer("cross-encoder", tiny_base, {"max_length": 32, "backbone_dropout": 0.0})
    apply_method(scorer, make_method("lora", {"dropout": 0.05}), total_steps=4)
    lora = {m.p for name, m in scorer.backbone.named_modules() if "lora_dropout" in name and isinstance(m, torch.nn.Dropout)}
    assert lora == {0.05}
    others = {m.p for name, m in scorer.backbone.named_modules() if "lora_dropout" not in name and isinstance(m, torch.nn.Dropout)}
    assert others == {0.0}


@pytest.mark.parametrize("bad", [-0.1, 1.0])
def test_an_impossible_backbone_dropout_is_refused(tiny_base, bad):
    with pytest.raises(ConfigError, match="backbone_dropout must be in"):
        build_scorer("bi-encoder", tiny_base, {"backbone_dropout": bad})
