"""Prefix tuning on BERT under transformers 5: it reaches attention, honours masks and segments, reloads."""

from __future__ import annotations

import warnings

import pytest
import torch
from _helpers import HOST, SCORER_CONFIG, perturb, prepared, scores
from torch import nn

from coldstart_peft import ConfigError, InputTooLongError, build_scorer, count_parameters, load_adapter, save_adapter
from coldstart_peft_plugins._prompt_learning import cache_keyword


def test_prefix_changes_bert_outputs_without_deprecated_keywords(tiny_base):
    base = build_scorer("cross-encoder", tiny_base, SCORER_CONFIG, host=HOST)
    scorer, _ = prepared(tiny_base, "prefix", {"num_virtual_tokens": 4})
    assert count_parameters(scorer.backbone)[0] == 4 * 2 * 2 * 32  # tokens x layers x (key, value) x hidden
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a deprecated `past_key_values` or dropped token_type_ids would warn
        adapted = scores(scorer)
    assert adapted != scores(base)


def test_padding_and_segments_are_honoured(tiny_base):
    scorer, _ = prepared(tiny_base, "prefix", {"num_virtual_tokens": 4})
    scorer.eval()
    alone = scorer.forward_pairs(["likes red soap"], ["red cream"])
    padded = scorer.forward_pairs(["likes red soap", "likes blue cream ; clicked blue soap blue brush"], ["red cream"] * 2)
    assert torch.allclose(alone, padded[:1], atol=1e-5)  # the extended mask hides the padding
    inputs = scorer.tokenize_pairs(["likes red soap"], ["red cream"])
    same = scorer.backbone(**inputs).last_hidden_state
    inputs["token_type_ids"] = torch.zeros_like(inputs["token_type_ids"])
    assert not torch.allclose(same, scorer.backbone(**inputs).last_hidden_state)


def test_the_cache_keyword_is_found_from_the_signature():
    class Renamed(nn.Module):
        def forward(self, input_ids=None, cache=None): ...

    class Upstream(nn.Module):
        def forward(self, input_ids=None, past_key_values=None, cache=None): ...

    class NoCache(nn.Module):
        def forward(self, input_ids=None): ...

    assert cache_keyword(Renamed()) == "cache"
    assert cache_keyword(Upstream()) == "past_key_values"
    with pytest.raises(ConfigError, match="prefix tuning cannot reach"):
        cache_keyword(NoCache())


def test_inputs_past_the_position_budget_are_refused(tiny_base):
    scorer, _ = prepared(tiny_base, "prefix", {"num_virtual_tokens": 20})  # tiny base: 64 positions
    scorer.config.max_length = 60
    with pytest.raises(InputTooLongError, match="max_length to at most 44"):
        scorer.score(["likes red soap " * 20], ["red cream"])
    with pytest.raises(ConfigError, match="no room for input tokens"):
        prepared(tiny_base, "prefix", {"num_virtual_tokens": 64})


def test_prefix_reloads(tiny_base, tmp_path):
    scorer, _ = prepared(tiny_base, "prefix", {"num_virtual_tokens": 4})
    perturb(scorer)
    folder = save_adapter(scorer, tmp_path / "prefix")
    assert (folder / "adapter_model.safetensors").is_file()
    assert scores(load_adapter(folder, host=HOST)) == scores(scorer)
