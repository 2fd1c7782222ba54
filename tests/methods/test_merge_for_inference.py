"""Merged for inference: the same scores, the base changed, and training unmerges first."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _helpers import HOST, perturb, prepared, scores

from coldstart_peft import load_adapter, save_adapter


def _base_weight(scorer):
    """A base weight that every merging method (LoRA, DoRA, AdaLoRA, IA3) adapts: layer 0's query."""
    for name, parameter in scorer.backbone.named_parameters():
        if "layer.0.attention.self.query" in name and name.endswith("base_layer.weight"):
            return parameter
    raise AssertionError("no adapted query layer")


@pytest.mark.parametrize("name", ["lora", "dora", "adalora", "ia3"])
def test_a_merged_adapter_scores_the_same_through_changed_base_weights(tiny_base, tmp_path, name):
    config = {"target_modules": ["query", "value"], "feedforward_modules": []} if name == "ia3" else None
    scorer, _ = prepared(tiny_base, name, config)
    perturb(scorer)
    folder = save_adapter(scorer, tmp_path / name)
    loaded = load_adapter(folder, host=HOST, merge=True)
    plain = load_adapter(folder, host=HOST)
    assert loaded.merged and not plain.merged
    # The adapter is really folded in: a merge that did nothing would leave the base untouched.
    assert not torch.equal(_base_weight(loaded), _base_weight(plain))
    np.testing.assert_allclose(scores(loaded), scores(plain), atol=1e-5)


def test_training_a_merged_scorer_unmerges_and_trains_the_adapter(tiny_base, tmp_path):
    scorer, _ = prepared(tiny_base, "lora")
    perturb(scorer)
    folder = save_adapter(scorer, tmp_path / "lora")
    loaded = load_adapter(folder, host=HOST, merge=True)
    plain = load_adapter(folder, host=HOST)
    loaded.train()
    assert not loaded.merged
    torch.testing.assert_close(_base_weight(loaded), _base_weight(plain), atol=1e-6, rtol=0)
    lora = [p for n, p in loaded.backbone.named_parameters() if "lora_B" in n]
    for parameter in lora:
        parameter.requires_grad_(True)
    logits = loaded.forward_pairs(["likes red lipstick"], ["red cream"])
    logits.sum().backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in lora)


def test_methods_without_weights_to_fold_stay_unmerged(tiny_base, tmp_path):
    scorer, _ = prepared(tiny_base, "bottleneck")
    perturb(scorer)
    loaded = load_adapter(save_adapter(scorer, tmp_path / "bottleneck"), host=HOST, merge=True)
    assert loaded.merge_for_inference() is False and not loaded.merged
