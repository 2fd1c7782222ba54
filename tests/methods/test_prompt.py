"""Prompt tuning: virtual tokens in, one hidden state per real token out, so pooling is unchanged."""

from __future__ import annotations

import torch
from _helpers import HOST, perturb, prepared, scores

from coldstart_peft import InputTooLongError, count_parameters, load_adapter, save_adapter

import pytest


def test_output_has_one_position_per_input_token(tiny_base):
    scorer, _ = prepared(tiny_base, "prompt", {"num_virtual_tokens": 5})
    assert count_parameters(scorer.backbone)[0] == 5 * 32
    inputs = scorer.tokenize_pairs(["likes red soap", "likes blue cream ; clicked blue soap"], ["red cream"] * 2)
    hidden = scorer.backbone(**inputs).last_hidden_state
    assert hidden.shape[:2] == inputs["input_ids"].shape
    scorer.eval()
    alone = scorer.forward_pairs(["likes red soap"], ["red cream"])
    assert torch.allclose(alone, scorer.forward_pairs(["likes red soap", "likes blue cream ; clicked blue soap"], ["red cream"] * 2)[:1], atol=1e-5)


def test_inputs_past_the_position_budget_are_refused(tiny_base):
    scorer, _ = prepared(tiny_base, "prompt", {"num_virtual_tokens": 20})
    scorer.config.max_length = 60
    with pytest.raises(InputTooLongError, match="virtual tokens"):
        scorer.score(["likes red soap " * 20], ["red cream"])


def test_prompt_reloads(tiny_base, tmp_path):
    scorer, _ = prepared(tiny_base, "prompt", {"num_virtual_tokens": 5})
    perturb(scorer)
    folder = save_adapter(scorer, tmp_path / "prompt")
    assert scores(load_adapter(folder, host=HOST)) == scores(scorer)
