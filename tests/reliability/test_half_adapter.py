"""Half an adapter never loads: every tensor a peft adapter's config needs must be in its file, with
its shape and dtype; a complete adapter with trained (non-identity) weights reloads and scores the same."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file, save_file

from coldstart_peft import CorruptAdapterError, apply_method, build_scorer, create_host, load_adapter, save_adapter
from tests.reliability._intact import damaged, digests

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning", "ignore::UserWarning")
HOST = create_host(load_entrypoints=False)
WEIGHTS = "adapter_model.safetensors"
USERS, ITEMS = ["likes red lipstick", "likes blue soap"], ["red lipstick", "blue soap"]
PEFT_METHODS = {"lora": {"r": 2}, "dora": {"r": 2}, "ia3": {}, "adalora": {}, "prompt": {"num_virtual_tokens": 2},
                "prefix": {"num_virtual_tokens": 2}}  # fmt: skip


def _saved(folder, base, method="lora", config=None):
    torch.manual_seed(0)
    scorer = build_scorer("cross-encoder", base, {"max_length": 32}, host=HOST)
    apply_method(scorer, HOST.method(method)(config if config is not None else PEFT_METHODS[method]), total_steps=10)
    with torch.no_grad():  # trained-looking weights: a load that kept the initial ones would score differently
        for name, parameter in scorer.backbone.named_parameters():
            if parameter.requires_grad:
                parameter.add_(torch.randn_like(parameter) * 0.3)
    return scorer, save_adapter(scorer, folder)


def _rewrite(folder, change):
    path = folder / WEIGHTS
    save_file(change(load_file(str(path))), str(path))


@pytest.fixture
def lora_adapter(tmp_path, tiny_base):
    return _saved(tmp_path / "adapter", tiny_base)[1]


CORRUPTIONS = [
    ("every lora_B removed", lambda t: {k: v for k, v in t.items() if "lora_B" not in k}, "missing .*lora_B"),
    ("no tensor at all", lambda t: {}, "missing"),
    ("one tensor removed", lambda t: dict(list(t.items())[1:]), "1 problems: missing"),
    ("a tensor in float16", lambda t: {k: v.half() if i == 0 else v for i, (k, v) in enumerate(t.items())}, "F16, expected .* F32"),
    ("an extra tensor", lambda t: {**t, "base_model.model.encoder.layer.0.attention.self.query.lora_C.weight": torch.ones(2)},
     "unexpected .*lora_C"),
    ("a tensor of another rank", lambda t: {k: torch.zeros(4, *v.shape[1:]) if "lora_A" in k else v for k, v in t.items()},
     "lora_A.*(expected \\[2|shape in current model is torch.Size\\(\\[2)"),  # peft's own load names it first
]


@pytest.mark.parametrize(("change", "match"), [c[1:] for c in CORRUPTIONS], ids=[c[0] for c in CORRUPTIONS])
def test_a_damaged_lora_file_is_refused_naming_the_tensors(lora_adapter, change, match):
    _rewrite(lora_adapter, change)
    before = digests(lora_adapter)
    with pytest.raises(CorruptAdapterError, match=match):
        load_adapter(lora_adapter, host=HOST)
    assert not damaged(before, lora_adapter)


@pytest.mark.parametrize("method", sorted(PEFT_METHODS))
def test_every_peft_method_reloads_its_trained_weights_and_refuses_a_missing_tensor(method, tmp_path, tiny_base):
    scorer, folder = _saved(tmp_path / method, tiny_base, method)
    scorer.eval()
    loaded = load_adapter(folder, host=HOST)
    bare = build_scorer("cross-encoder", tiny_base, {"max_length": 32}, host=HOST).eval()
    with torch.no_grad():
        trained, reloaded = torch.as_tensor(scorer.score(USERS, ITEMS)), torch.as_tensor(loaded.score(USERS, ITEMS))
    assert torch.allclose(trained, reloaded, atol=1e-5)
    assert not torch.allclose(reloaded, torch.as_tensor(bare.score(USERS, ITEMS)), atol=1e-4)  # not the identity
    _rewrite(folder, lambda t: dict(list(t.items())[:-1]))
    with pytest.raises(CorruptAdapterError, match="missing|prompt_embeddings"):  # prompt learning: peft's KeyError, named
        load_adapter(folder, host=HOST)
