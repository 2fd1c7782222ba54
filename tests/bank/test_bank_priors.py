"""Banks with priors: one table set at the root, per-domain prior weights, scores equal to each adapter alone."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from _bank_helpers import HOST, SCORER_CONFIG, tiny_scorer
from coldstart_peft import TrainGroup, load_adapter, save_adapter
from coldstart_peft.bank import AdapterBank, save_bank
from coldstart_peft.errors import AdapterError
from coldstart_peft.priors import Priors

DOMAINS = ["Bath & Body", "Fragrance", "Hair Care", "Makeup", "Skin Care", "Tools & Accessories"]
ITEMS = ["red cream", "blue soap", "gold brush perfume", "blue cream", "pink perfume", "grey brush"]
GROUPS = [TrainGroup(f"likes {t}", [t, ITEMS[(i + 1) % 6]], [1.0, 0.0], item_ids=[f"i{i}", f"i{(i + 1) % 6}"],
                     context_ids=[f"i{(i + 2) % 6}"]) for i, t in enumerate(ITEMS)] * 3  # fmt: skip
USERS = ["likes red cream", "likes blue soap"] * 6
PAIR_ITEMS = ITEMS * 2
CONTEXT = [["i2"], ["i3"]] * 6
IDS = [f"i{i}" for i in range(6)] * 2


def _with_priors(tiny_base, seed, tables=None):
    scorer = tiny_scorer(tiny_base, "lora", seed)
    scorer.attach_priors(Priors(tables=tables))
    if tables is None:
        scorer.priors.fit(GROUPS)
    with torch.no_grad():  # each domain its own, non-default prior weights
        scorer.priors.weight.copy_(torch.tensor([0.5, 1.0, 2.0, 1.5]) * seed)
    return scorer


def _scores(scorer_or_bank, **route):
    return scorer_or_bank.score(USERS, PAIR_ITEMS, **route, context_ids=CONTEXT, item_ids=IDS)


def test_six_domains_share_one_table_file_and_score_as_each_adapter_alone(tmp_path, tiny_base):
    first = _with_priors(tiny_base, 1)
    scorers = {d: _with_priors(tiny_base, i + 1, tables=first.priors.tables) for i, d in enumerate(DOMAINS)}
    alone = {d: _scores(s) for d, s in scorers.items()}
    root = save_bank(tmp_path / "bank", scorers)
    assert [p.name for p in (root / "priors").iterdir()] == [f"{first.priors.tables.digest()}.safetensors"]
    assert not list(root.rglob("*/prior_tables.safetensors")), "no domain folder keeps a copy"
    bank = AdapterBank.load(root, host=HOST)
    bank.scorer.precision = "fp32"
    for domain in DOMAINS:
        np.testing.assert_allclose(_scores(bank, domains=domain), alone[domain], rtol=1e-5, atol=1e-5)
    mixed = [DOMAINS[i % 6] for i in range(len(USERS))]
    expected = np.array([alone[d][i] for i, d in enumerate(mixed)])
    np.testing.assert_allclose(_scores(bank, domains=mixed), expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(_scores(bank, domains=mixed, mixed=False), expected, rtol=1e-5, atol=1e-5)


def test_add_accepts_a_default_recipe_adapter_with_its_own_tables(tmp_path, tiny_base):
    root = save_bank(tmp_path / "bank", {"Makeup": _with_priors(tiny_base, 1)})
    other = Priors(tokenizer=None)
    newcomer = _with_priors(tiny_base, 3)
    other_groups = GROUPS[:4]
    newcomer.priors.fit(other_groups)  # tables of its own, unlike the bank's
    folder = save_adapter(newcomer, tmp_path / "newcomer")
    alone = load_adapter(folder)
    alone.precision = "fp32"  # as the bank below: ``auto`` is bf16 on a CPU where bf16 is fast
    expected = _scores(alone)
    bank = AdapterBank.load(root, host=HOST)
    bank.scorer.precision = "fp32"
    makeup = _scores(bank, domains="Makeup")
    bank.add("Hair Care", folder, persist=True)
    np.testing.assert_allclose(_scores(bank, domains="Hair Care"), expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(_scores(bank, domains="Makeup"), makeup, rtol=1e-6)
    assert len(list((root / "priors").iterdir())) == 2 and (folder / "prior_tables.safetensors").is_file()
    reloaded = AdapterBank.load(root, host=HOST)
    reloaded.scorer.precision = "fp32"
    np.testing.assert_allclose(_scores(reloaded, domains="Hair Care"), expected, rtol=1e-5, atol=1e-5)
    assert other.tokenizer is None


def test_a_bank_refuses_an_adapter_composed_with_other_priors(tmp_path, tiny_base):
    root = save_bank(tmp_path / "bank", {"Makeup": _with_priors(tiny_base, 1)})
    plain = tiny_scorer(tiny_base, "lora", 5)
    folder = save_adapter(plain, tmp_path / "plain")
    bank = AdapterBank.load(root, host=HOST)
    with pytest.raises(AdapterError, match="prior features"):
        bank.add("Hair Care", folder)
    assert bank.domains == ["Makeup"]


def test_merged_scorer_keeps_the_domain_priors(tmp_path, tiny_base):
    scorer = _with_priors(tiny_base, 2)
    root = save_bank(tmp_path / "bank", {"Makeup": scorer})
    bank = AdapterBank.load(root, host=HOST)
    merged = bank.merged_scorer("Makeup")
    merged.precision = "fp32"
    np.testing.assert_allclose(_scores(merged), _scores(scorer), rtol=1e-5, atol=1e-5)
    assert SCORER_CONFIG["max_length"] == merged.config.max_length
