"""Adding a LoRA adapter without ``load_adapter`` gives the model peft would build, and refuses the same bad files."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from peft import PeftModel
from peft.tuners.tuners_utils import BaseTunerLayer
from safetensors.torch import load_file, save_file

from _bank_helpers import HOST, ITEMS, SCORER_CONFIG, USERS, load_fp32, tiny_bank
from coldstart_peft import CorruptAdapterError, apply_method, build_scorer, save_adapter
from coldstart_peft.artifact import HEAD, read_safetensors
from coldstart_peft.bank import AdapterBank
from coldstart_peft.bank.slots import PeftSlots

WEIGHTS = "adapter_model.safetensors"


def _scorer(tiny_base: str, method: str, seed: int, **config):
    """Like ``tiny_scorer`` but with method settings; every weight (LoRA's B included) moved off its init."""
    torch.manual_seed(seed)
    scorer = build_scorer("cross-encoder", tiny_base, SCORER_CONFIG, host=HOST)
    apply_method(scorer, HOST.method(method)(config), total_steps=10)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in scorer.parameters():
            if parameter.requires_grad:
                parameter.add_(torch.randn(parameter.shape, generator=generator) * 0.3)
    return scorer


def _with_peft_loader(monkeypatch):
    """Add and delete adapters with ``load_adapter`` and ``delete_adapter``: what the fast paths must equal."""

    def detach(self, name):
        peft = self.peft
        if peft is not None and name in peft.peft_config:
            peft.delete_adapter(name)
            self._layers = None
            if self.active == name:
                self.active = peft.active_adapter

    monkeypatch.setattr(PeftSlots, "_attach_lora", lambda self, peft, key, directory, tensors: False)
    monkeypatch.setattr(PeftSlots, "detach", detach)


def _count_peft_loads(monkeypatch) -> list[str]:
    calls = []
    original = PeftModel.load_adapter

    def counting(self, model_id, *args, **kwargs):
        calls.append(model_id)
        return original(self, model_id, *args, **kwargs)

    monkeypatch.setattr(PeftModel, "load_adapter", counting)
    return calls


def _state(bank: AdapterBank) -> dict:
    """Everything about the model an added adapter could change."""
    peft = bank._slots.peft
    return {
        "tensors": [(k, v.dtype, v.clone()) for k, v in peft.state_dict().items()],
        "requires_grad": [(k, p.requires_grad) for k, p in peft.named_parameters()],
        "training": [(k, m.training) for k, m in peft.named_modules()],
        "configs": {k: c.to_dict() for k, c in peft.peft_config.items()},
        "targets": list(peft.base_model.targeted_module_names),
        "active": [peft.active_adapter] + [m.active_adapters for m in peft.modules() if isinstance(m, BaseTunerLayer)],
    }


def _assert_same_state(left: dict, right: dict) -> None:
    assert [(k, d) for k, d, _ in left["tensors"]] == [(k, d) for k, d, _ in right["tensors"]]
    for (key, _, a), (_, _, b) in zip(left["tensors"], right["tensors"]):
        assert torch.equal(a, b), key
    for field in ("requires_grad", "training", "configs", "targets", "active"):
        assert left[field] == right[field], field


@pytest.mark.filterwarnings("ignore:Adapter .* was active which is now deleted")  # the hot swap of the active domain
@pytest.mark.parametrize("targets", [None, ["query"]], ids=["all-targets", "subset"])
def test_fast_add_equals_plain_peft_loading(tmp_path, tiny_base, monkeypatch, targets):
    tiny_bank(tmp_path / "bank", tiny_base)
    config = {"target_modules": targets} if targets else {}
    save_adapter(_scorer(tiny_base, "lora", 7, **config), tmp_path / "new")

    fast = load_fp32(tmp_path / "bank")
    calls = _count_peft_loads(monkeypatch)
    fast.add("Nails", tmp_path / "new")
    assert calls == []  # the fast path took it
    added = _state(fast)  # before any scoring, which would switch every module to eval mode
    _with_peft_loader(monkeypatch)
    slow = load_fp32(tmp_path / "bank")
    slow.add("Nails", tmp_path / "new")
    assert calls[-1] == str(tmp_path / "new")
    _assert_same_state(added, _state(slow))

    reference = build_scorer("cross-encoder", tiny_base, SCORER_CONFIG, host=HOST)
    reference.backbone = PeftModel.from_pretrained(reference.backbone, str(tmp_path / "new"), is_trainable=False)
    reference.load_head_state_dict(read_safetensors(tmp_path / "new" / HEAD))
    reference.eval()
    reference.precision = "fp32"
    expected = reference.score(USERS, ITEMS)
    assert np.abs(expected - fast.score(USERS, ITEMS, domains="Makeup")).max() > 1e-3  # the adapter matters
    np.testing.assert_array_equal(fast.score(USERS, ITEMS, domains="Nails"), expected)
    np.testing.assert_array_equal(slow.score(USERS, ITEMS, domains="Nails"), expected)

    for bank in (fast, slow):  # hot-swapping the active domain deletes the active adapter
        bank.add("Nails", tmp_path / "new", replace=True)
        bank.remove("Makeup")
        bank.activate("Hair Care")
    _assert_same_state(_state(fast), _state(slow))


def _missing_weight(folder):
    tensors = load_file(str(folder / WEIGHTS))
    tensors.pop(sorted(tensors)[0])
    save_file(tensors, str(folder / WEIGHTS))


def _wrong_rank(folder):
    config = json.loads((folder / "adapter_config.json").read_text())
    config["r"] = 4
    (folder / "adapter_config.json").write_text(json.dumps(config))


def _non_finite(folder):
    tensors = load_file(str(folder / WEIGHTS))
    tensors[sorted(tensors)[-1]][0, 0] = float("nan")
    save_file(tensors, str(folder / WEIGHTS))


def _truncated(folder):
    (folder / WEIGHTS).write_bytes((folder / WEIGHTS).read_bytes()[:-100])


@pytest.mark.parametrize(
    "corrupt, match",
    [(_missing_weight, "lacks 1 weights"), (_wrong_rank, "size mismatch"), (_non_finite, "NaN"), (_truncated, "truncated")],
    ids=["missing-weight", "wrong-shape", "nan", "truncated"],
)
def test_fast_add_refuses_what_peft_loading_refuses(tmp_path, tiny_base, monkeypatch, corrupt, match):
    tiny_bank(tmp_path / "bank", tiny_base)
    save_adapter(_scorer(tiny_base, "lora", 7), tmp_path / "bad")
    corrupt(tmp_path / "bad")
    fast = load_fp32(tmp_path / "bank")
    scores = fast.score(USERS, ITEMS, domains="Makeup")
    before = _state(fast)
    calls = _count_peft_loads(monkeypatch)
    with pytest.raises(CorruptAdapterError, match=match):
        fast.add("Makeup", tmp_path / "bad", replace=True)
    assert calls == []
    _assert_same_state(_state(fast), before)  # nothing half-added
    np.testing.assert_array_equal(fast.score(USERS, ITEMS, domains="Makeup"), scores)

    _with_peft_loader(monkeypatch)
    slow = load_fp32(tmp_path / "bank")
    with pytest.raises(CorruptAdapterError, match=match):
        slow.add("Makeup", tmp_path / "bad", replace=True)


@pytest.mark.parametrize("method, config", [("lora", {"target_modules": ["query", "value", "dense"]}), ("dora", {})],
                         ids=["new-target-layers", "dora"])  # fmt: skip
def test_what_the_fast_path_cannot_build_goes_to_peft(tmp_path, tiny_base, monkeypatch, method, config):
    tiny_bank(tmp_path / "bank", tiny_base, method)
    scorer = _scorer(tiny_base, method, 7, **config)
    save_adapter(scorer, tmp_path / "new")
    bank = load_fp32(tmp_path / "bank")
    calls = _count_peft_loads(monkeypatch)
    bank.add("Nails", tmp_path / "new")
    assert calls == [str(tmp_path / "new")]
    scorer.eval()
    scorer.precision = "fp32"
    np.testing.assert_allclose(bank.score(USERS, ITEMS, domains="Nails"), scorer.score(USERS, ITEMS), atol=1e-5)


def test_an_untested_peft_release_gets_the_public_loader(tmp_path, tiny_base, monkeypatch):
    """The fast path uses peft internals; on a release it was not tested with, peft's load_adapter adds."""
    from coldstart_peft.bank import lora_attach

    tiny_bank(tmp_path / "bank", tiny_base)
    save_adapter(_scorer(tiny_base, "lora", 7), tmp_path / "new")
    assert lora_attach.fast_path_supported(), "CI installs a peft the fast path is tested with"
    fast = load_fp32(tmp_path / "bank")
    fast.add("Nails", tmp_path / "new")
    monkeypatch.setattr(lora_attach, "FAST_PATH_PEFT", ("999.",))
    calls = _count_peft_loads(monkeypatch)
    public = load_fp32(tmp_path / "bank")
    public.add("Nails", tmp_path / "new")
    assert calls[-1] == str(tmp_path / "new") and len(calls) > 1, "every adapter, the bank's own too, went through peft"
    np.testing.assert_array_equal(public.score(USERS, ITEMS, domains="Nails"), fast.score(USERS, ITEMS, domains="Nails"))


def test_hot_swapping_the_active_domain_never_walks_every_adapter(tmp_path, tiny_base, monkeypatch):
    scorers, _ = tiny_bank(tmp_path / "bank", tiny_base)
    bank = load_fp32(tmp_path / "bank")
    domain, other = bank.domains[0], bank.domains[1]
    new = save_adapter(_scorer(tiny_base, "lora", 7), tmp_path / "new")
    expected = load_fp32(tmp_path / "bank")
    expected.add(domain, new, replace=True)
    want = expected.score(USERS, ITEMS, domains=domain)
    before_other = bank.score(USERS, ITEMS, domains=other)

    bank.activate(domain)  # deleting the live adapter is what made peft call set_adapter on every layer
    calls = []
    real = BaseTunerLayer.set_adapter
    # peft's set_adapter flips requires_grad on every adapter the layer holds: record how many it saw.
    monkeypatch.setattr(BaseTunerLayer, "set_adapter", lambda self, *a, **k: calls.append(len(self.lora_A)) or real(self, *a, **k))
    bank.add(domain, new, replace=True)
    assert calls and max(calls) == 1  # only the new adapter's own layers, built alone; never a walk of all four
    np.testing.assert_allclose(bank.score(USERS, ITEMS, domains=domain), want, atol=1e-5)
    np.testing.assert_allclose(bank.score(USERS, ITEMS, domains=other), before_other, atol=1e-5)
    assert not np.allclose(want, scorers[domain].score(USERS, ITEMS), atol=1e-3)  # the swap changed the scores
