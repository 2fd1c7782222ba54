"""Bottleneck adapters: near-identity at init, both placements, own-weights-only saving, named errors."""

from __future__ import annotations

import json

import pytest
import torch
from _helpers import HOST, perturb, prepared, scores
from safetensors.torch import load_file
from transformers import BertConfig, BertModel, DistilBertConfig, DistilBertModel, OPTConfig, OPTModel

from coldstart_peft import ConfigError, build_scorer, count_parameters, load_adapter, save_adapter
from coldstart_peft_plugins.bottleneck import AdaptedProjection, UnsupportedArchitectureError

TINY = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64, vocab_size=50)


def _bert():
    torch.manual_seed(0)
    return BertModel(BertConfig(**TINY)).eval()


def _adapted(model, **config):
    method = HOST.method("bottleneck")(config)
    return method.prepare(model, method.config)


def _adapted_names(model):
    return sorted(n for n, m in model.named_modules() if isinstance(m, AdaptedProjection))


def test_houlsby_adapts_attention_and_feed_forward_outputs():
    assert _adapted_names(_adapted(_bert(), placement="houlsby")) == [
        f"encoder.layer.{i}.{part}" for i in range(2) for part in ("attention.output.dense", "output.dense")
    ]


def test_pfeiffer_adapts_only_feed_forward_outputs():
    assert _adapted_names(_adapted(_bert(), placement="pfeiffer")) == [f"encoder.layer.{i}.output.dense" for i in range(2)]


def test_distilbert_layout_is_supported():
    torch.manual_seed(0)
    model = DistilBertModel(DistilBertConfig(dim=32, n_layers=2, n_heads=2, hidden_dim=64, vocab_size=50))
    assert _adapted_names(_adapted(model)) == [
        f"transformer.layer.{i}.{part}" for i in range(2) for part in ("attention.out_lin", "ffn.lin2")
    ]


def test_unsupported_architecture_names_the_supported_ones():
    model = OPTModel(OPTConfig(hidden_size=32, num_hidden_layers=2, ffn_dim=64, num_attention_heads=2, vocab_size=50,
                               word_embed_proj_dim=32, max_position_embeddings=64))  # fmt: skip
    with pytest.raises(UnsupportedArchitectureError, match="supported: bert, camembert, distilbert") as info:
        _adapted(model)
    assert isinstance(info.value, ConfigError) and "'opt'" in str(info.value)


@pytest.mark.parametrize("placement", ["houlsby", "pfeiffer"])
def test_adapters_start_near_identity(placement):
    inputs = {"input_ids": torch.tensor([[2, 10, 20, 30, 3]]), "attention_mask": torch.ones(1, 5, dtype=torch.long)}
    base = _bert()(**inputs).last_hidden_state
    exact = _adapted(_bert(), placement=placement, init_scale=0.0)(**inputs).last_hidden_state
    near = _adapted(_bert(), placement=placement)(**inputs).last_hidden_state
    assert torch.equal(exact, base)
    assert 0 < (near - base).abs().max() < 1e-2
    far = _adapted(_bert(), placement=placement, init_scale=1.0)(**inputs).last_hidden_state
    assert (far - base).abs().max() > 10 * (near - base).abs().max()


def _adapter_size(model):
    return sum(p.numel() for n, p in model.named_parameters() if ".adapter." in n)


def test_size_options():
    model = _adapted(_bert(), placement="pfeiffer", reduction_factor=4)
    assert _adapter_size(model) == 2 * (32 * 8 + 8 + 8 * 32 + 32)
    model = _adapted(_bert(), placement="pfeiffer", bottleneck_size=3, nonlinearity="gelu")
    assert _adapter_size(model) == 2 * (32 * 3 + 3 + 3 * 32 + 32)
    with pytest.raises(ConfigError, match="nonlinearity"):
        HOST.method("bottleneck")({"nonlinearity": "swish2"})


def test_saves_only_its_own_weights_and_reloads(tiny_base, tmp_path):
    scorer, method = prepared(tiny_base, "bottleneck", {"placement": "houlsby", "nonlinearity": "gelu"})
    perturb(scorer)
    folder = save_adapter(scorer, tmp_path / "bottleneck")
    weights = load_file(str(folder / "bottleneck.safetensors"))
    assert weights and all(".adapter." in k for k in weights)
    assert sum(t.numel() for t in weights.values()) == count_parameters(scorer.backbone)[0]
    assert json.loads((folder / "bottleneck_config.json").read_text())["nonlinearity"] == "gelu"
    reloaded = load_adapter(folder, host=HOST)
    assert scores(reloaded) == scores(scorer)
    assert scores(reloaded) != scores(build_scorer("cross-encoder", tiny_base, {"max_length": 48, "dropout": 0.0}, host=HOST))
