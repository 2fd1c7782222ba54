"""Per-domain training on a small synthetic split: a bank with the minimum-data rule, and the CLI flags."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from accelerate.state import AcceleratorState

from _bank_helpers import HOST
from coldstart_peft.bank import AdapterBank, PerDomainSettings, read_manifest, train_per_domain
from coldstart_peft.cli import build_parser
from coldstart_peft.data import Dataset, Interaction, Item, cold_user_split
from coldstart_peft.priors import DEFAULT_FEATURES
from coldstart_peft.recipes import FitSettings
from coldstart_peft.training import TrainConfig

COLOURS = ["red", "blue", "green", "black", "white", "pink"]
KINDS = {"Makeup": ["lipstick", "brush"], "Hair Care": ["shampoo", "cream"], "Bath & Body": ["soap"]}


def synthetic_dataset(n_users: int = 60, seed: int = 0) -> Dataset:
    """Users buy items of one colour; Bath & Body is rare, so it falls under the minimum."""
    rng = random.Random(seed)
    items = {f"{c}-{k}": Item(f"{c}-{k}", title=f"{c} {k}", domain=d) for d, kinds in KINDS.items() for k in kinds for c in COLOURS}
    interactions = []
    for u in range(n_users):
        colour = rng.choice(COLOURS)
        domain = "Bath & Body" if u % 20 == 0 else rng.choice(["Makeup", "Hair Care"])
        for t in range(4):
            interactions.append(Interaction(f"u{u}", f"{colour}-{rng.choice(KINDS[domain])}", float(t)))
    return Dataset("synthetic", items, interactions)


@pytest.fixture
def fresh_accelerator_state():
    """Accelerate keeps one process-wide state; this test's precision must not leak into others."""
    AcceleratorState._reset_state(reset_partial_state=True)
    yield
    AcceleratorState._reset_state(reset_partial_state=True)


@pytest.mark.usefixtures("fresh_accelerator_state")
def test_train_per_domain_writes_a_loadable_bank_with_fallbacks(tmp_path, tiny_base):
    split = cold_user_split(synthetic_dataset(), k=1, n_negatives=5)
    settings = FitSettings(method="lora", scorer="cross-encoder", scorer_config={"max_length": 32, "dropout": 0.0},
                           base_model=tiny_base, n_negatives=3, valid_users=10, valid_candidates=6)  # fmt: skip
    per_domain = PerDomainSettings(domain_adapters=True, min_calibration_users=1, min_groups=20, max_groups_per_domain=40)
    config = TrainConfig(epochs=1, batch_size=8, lr=5e-3, progress=False, precision="fp32")
    lines: list[str] = []
    manifest = train_per_domain(split, tmp_path / "bank", settings, per_domain, config, host=HOST, log=lines.append)
    status = {d["name"]: d["status"] for d in manifest["domains"]}
    assert status == {"Bath & Body": "fallback", "Hair Care": "trained", "Makeup": "trained"}
    rare = next(d for d in manifest["domains"] if d["name"] == "Bath & Body")
    assert "min_groups=20" in rare["reason"] and rare["available_groups"] < 20
    trained = next(d for d in manifest["domains"] if d["name"] == "Makeup")
    assert trained["train_groups"] <= 40 and trained["bytes"] > 0 and trained["from_global"]
    assert read_manifest(tmp_path / "bank")["global"]["train_groups"] > 0 and len(lines) == 4

    bank = AdapterBank.load(tmp_path / "bank", host=HOST)
    bank.scorer.precision = "fp32"
    assert bank.domains == ["Hair Care", "Makeup"] and bank.cold_domains == ["Bath & Body"]
    assert bank.route("Bath & Body").reason == "global"
    users, items = ["recently bought red lipstick"] * 2, ["red brush", "blue brush"]
    assert not np.allclose(bank.score(users, items, domains="Makeup"), bank.score(users, items, domains="Bath & Body"))


def test_train_command_accepts_per_domain_flags():
    args = build_parser().parse_args(["train", "--per-domain", "--dataset", "beauty", "--out", "runs/x", "--seed", "3",
                                      "--max-groups-per-domain", "500", "--no-from-global", "--domains", "Makeup,Fragrance",
                                      "--domain-adapters", "--min-calibration-users", "40"])  # fmt: skip
    assert args.per_domain and args.seed == 3 and args.max_groups_per_domain == 500 and not args.from_global
    assert args.domain_adapters and args.min_calibration_users == 40
    defaults = build_parser().parse_args(["train", "--per-domain", "--dataset", "beauty", "--out", "runs/x"])
    assert not defaults.domain_adapters and defaults.min_calibration_users == 50
    assert args.dataset == "beauty" and args.domains == "Makeup,Fragrance" and args.pairs is None


def test_per_domain_training_refuses_a_pairs_file(tmp_path, capsys):
    from coldstart_peft.cli import main

    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text('{"user_text": "u", "item_text": "i", "label": 1}\n')
    assert main(["train", "--per-domain", "--pairs", str(pairs), "--out", str(tmp_path / "a")]) == 2
    assert "drop --pairs" in capsys.readouterr().err
    assert not (tmp_path / "a").exists()


def test_share_splits_steps_in_proportion_and_gives_each_domain_one():
    from coldstart_peft.bank.training import _share

    assert _share(60, {"a": 100, "b": 50, "c": 7}) == {"a": 38, "b": 19, "c": 3}
    assert sum(_share(61, {"a": 3, "b": 3}).values()) == 61 and _share(1, {"a": 9, "b": 1}) == {"a": 1, "b": 1}


@pytest.mark.usefixtures("fresh_accelerator_state")
def test_a_total_step_budget_covers_the_global_run_and_every_domain(tmp_path, tiny_base):
    split = cold_user_split(synthetic_dataset(), k=1, n_negatives=5)
    settings = FitSettings(method="lora", scorer="bi-encoder", scorer_config={"max_length": 32}, base_model=tiny_base,
                           valid_users=5, valid_candidates=6, calibration_users=10)  # fmt: skip
    per_domain = PerDomainSettings(domain_adapters=True, min_calibration_users=1, min_groups=20, total_steps=8,
                                   global_share=0.5, compare_global=False)  # fmt: skip
    config = TrainConfig(epochs=50, batch_size=4, lr=5e-3, progress=False, precision="fp32")
    manifest = train_per_domain(split, tmp_path / "bank", settings, per_domain, config, host=HOST, log=lambda _: None)
    trained = [d for d in manifest["domains"] if d["status"] == "trained"]
    assert manifest["global"]["steps"] == 4 and sum(d["steps"] for d in trained) == 4 and len(trained) == 2
    # With the default recipe's priors, each domain is calibrated on its own validation users.
    assert all(set(d["calibration"]) == set(DEFAULT_FEATURES) for d in trained)
    assert len({tuple(d["calibration"].values()) for d in trained}) == 2


@pytest.mark.usefixtures("fresh_accelerator_state")
def test_the_default_bank_is_the_global_adapter_with_each_domains_own_prior_weights(tmp_path, tiny_base, monkeypatch):
    from safetensors.torch import load_file

    from coldstart_peft.bank import training as bank_training

    split = cold_user_split(synthetic_dataset(n_users=120), k=1, n_negatives=5)
    counts = {d: sum(c.domain == d for c in split.ranking_cases("valid")) for d in KINDS}
    floor = counts["Bath & Body"] + 1  # the rare domain falls under it, the other two clear it
    assert min(counts["Makeup"], counts["Hair Care"]) >= floor
    calls, real_calibrate = [], bank_training.calibrate_priors

    def calibrate(scorer, cases, **kwargs):
        # The synthetic users are separable, so L-BFGS would barely move from the global weights;
        # a distinct offset per call shows which weights each domain saved and that none is lost.
        real_calibrate(scorer, cases, **kwargs)
        calls.append({c.domain for c in cases})
        with torch.no_grad():
            scorer.priors.weight.add_(float(len(calls)))
        return scorer.priors.named_weights()

    monkeypatch.setattr(bank_training, "calibrate_priors", calibrate)
    settings = FitSettings(method="lora", scorer="bi-encoder", scorer_config={"max_length": 32}, base_model=tiny_base,
                           valid_users=5, valid_candidates=6, calibration_users=100)  # fmt: skip
    per_domain = PerDomainSettings(min_calibration_users=floor, total_steps=6, compare_global=False)
    config = TrainConfig(epochs=50, batch_size=4, lr=5e-3, progress=False, precision="fp32")
    manifest = train_per_domain(split, tmp_path / "bank", settings, per_domain, config, host=HOST, log=lambda _: None)

    entries = {d["name"]: d for d in manifest["domains"]}
    assert manifest["global"]["steps"] == 6  # no domain training: the whole budget went to the global run
    assert entries["Bath & Body"]["status"] == "fallback" and f"min_calibration_users={floor}" in entries["Bath & Body"]["reason"]
    own = {d: entries[d]["calibration"] for d in ("Hair Care", "Makeup")}
    assert all(entries[d]["status"] == "trained" and entries[d]["steps"] == 0 for d in own)
    assert all(entries[d]["calibration_users"] == counts[d] for d in own)
    assert calls[1:] == [{"Hair Care"}, {"Makeup"}]  # after the global run's: each domain on its own users only
    weights = [tuple(w.values()) for w in (manifest["global"]["calibration"], *own.values())]
    assert len(set(weights)) == 3

    root = tmp_path / "bank"
    lora = lambda folder: {k: v for k, v in load_file(root / folder / "adapter_model.safetensors").items() if "lora" in k}  # noqa: E731
    global_lora = lora(manifest["global"]["folder"])
    assert global_lora and any(v.abs().sum() > 0 for k, v in global_lora.items() if "lora_B" in k)
    for domain in own:
        mine = lora(entries[domain]["folder"])
        assert mine.keys() == global_lora.keys() and all(torch.equal(mine[k], global_lora[k]) for k in mine)

    bank = AdapterBank.load(root, host=HOST)
    bank.scorer.precision = "fp32"
    for domain, expected in [*own.items(), ("Bath & Body", manifest["global"]["calibration"])]:
        with bank.serving(domain) as scorer:
            assert scorer.priors.named_weights() == pytest.approx(expected, abs=1e-5), domain
