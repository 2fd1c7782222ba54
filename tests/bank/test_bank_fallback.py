"""Unknown and cold domains walk the fallback chain; add, remove and hot-swap change one domain only."""

from __future__ import annotations

import numpy as np
import pytest

from _bank_helpers import DOMAINS, ITEMS, USERS, base_scores, load_fp32, tiny_bank, tiny_scorer
from coldstart_peft import AdapterError, CorruptAdapterError, save_adapter
from coldstart_peft.bank import BankWriter, FallbackConfig


def test_unknown_domain_goes_global_then_nearest_then_base(tmp_path, tiny_base):
    scorers, global_scorer = tiny_bank(tmp_path / "bank", tiny_base)
    bank = load_fp32(tmp_path / "bank")
    assert bank.route("Nails").reason == "global"
    np.testing.assert_allclose(bank.score(USERS, ITEMS, domains="Nails"), global_scorer.score(USERS, ITEMS), atol=1e-5)

    nearest = load_fp32(tmp_path / "bank", fallback=FallbackConfig(chain=("nearest",), nearest_k=2))
    route = nearest.route("Nails")
    assert route.reason == "nearest" and len(route.parts) == 2 and {d for d, _ in route.parts} <= set(DOMAINS)
    assert abs(sum(w for _, w in route.parts) - 1) < 1e-6
    assert np.isfinite(nearest.score(USERS, ITEMS, domains="Nails")).all()

    pinned = load_fp32(tmp_path / "bank", fallback=FallbackConfig(chain=("nearest",), neighbours={"Nails": {"Makeup": 1.0}}))
    np.testing.assert_allclose(pinned.score(USERS, ITEMS, domains="Nails"), scorers["Makeup"].score(USERS, ITEMS), atol=1e-5)

    base = load_fp32(tmp_path / "bank", fallback=FallbackConfig(chain=("base",)))
    assert base.route("Nails").reason == "base" and base.route(None).reason == "base"
    np.testing.assert_allclose(base.score(USERS, ITEMS, domains="Nails"), base_scores(tiny_base), atol=1e-5)


def test_bottleneck_has_no_nearest_step_and_its_base_route_is_the_base_model(tmp_path, tiny_base):
    tiny_bank(tmp_path / "bank", tiny_base, "bottleneck", with_global=False)
    bank = load_fp32(tmp_path / "bank")  # default chain: no global adapter, bottleneck cannot combine -> base
    assert bank.route("Nails").reason == "base"
    np.testing.assert_allclose(bank.score(USERS, ITEMS, domains="Nails"), base_scores(tiny_base), atol=1e-5)


def test_cold_domain_in_manifest_uses_the_global_adapter(tmp_path, tiny_base):
    _, global_scorer = tiny_bank(tmp_path / "bank", tiny_base)
    BankWriter(tmp_path / "bank", global_scorer).add_fallback("Fragrance", reason="12 groups < min_groups=200")
    bank = load_fp32(tmp_path / "bank")
    assert bank.cold_domains == ["Fragrance"] and "Fragrance" not in bank
    np.testing.assert_allclose(bank.score(USERS, ITEMS, domains="Fragrance"), global_scorer.score(USERS, ITEMS), atol=1e-5)


def test_hot_swap_replaces_one_domain_and_keeps_the_others(tmp_path, tiny_base):
    scorers, global_scorer = tiny_bank(tmp_path / "bank", tiny_base)
    bank = load_fp32(tmp_path / "bank")
    before = {d: bank.score(USERS, ITEMS, domains=d) for d in DOMAINS}
    retrained = tiny_scorer(tiny_base, "lora", 7)
    save_adapter(retrained, tmp_path / "new")
    with pytest.raises(AdapterError, match="replace=True"):
        bank.add("Makeup", tmp_path / "new")
    bank.add("Makeup", tmp_path / "new", replace=True, persist=True)
    np.testing.assert_allclose(bank.score(USERS, ITEMS, domains="Makeup"), retrained.score(USERS, ITEMS), atol=1e-5)
    for domain in ("Hair Care", "Tools & Accessories"):
        np.testing.assert_allclose(bank.score(USERS, ITEMS, domains=domain), before[domain], atol=1e-6)
    reloaded = load_fp32(tmp_path / "bank")  # persisted: the folder and the manifest were updated
    np.testing.assert_allclose(reloaded.score(USERS, ITEMS, domains="Makeup"), retrained.score(USERS, ITEMS), atol=1e-5)

    bank.add("Nails", tmp_path / "new")
    assert bank.domains == sorted([*DOMAINS, "Nails"]) and bank.route("Nails").reason == "domain"
    bank.remove("Nails")
    assert "Nails" not in bank and bank.route("Nails").reason == "global"


def test_a_bad_adapter_never_replaces_a_good_one(tmp_path, tiny_base):
    tiny_bank(tmp_path / "bank", tiny_base)
    bank = load_fp32(tmp_path / "bank")
    before = bank.score(USERS, ITEMS, domains="Makeup")
    save_adapter(tiny_scorer(tiny_base, "lora", 7), tmp_path / "bad")
    weights = tmp_path / "bad" / "adapter_model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-100])
    with pytest.raises(CorruptAdapterError, match="truncated"):
        bank.add("Makeup", tmp_path / "bad", replace=True)
    np.testing.assert_allclose(bank.score(USERS, ITEMS, domains="Makeup"), before, atol=1e-6)
    assert len(bank._slots.peft.peft_config) == 4  # three domains and the global adapter, nothing half-added
