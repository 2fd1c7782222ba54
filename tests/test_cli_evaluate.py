"""``evaluate``: ``--baseline`` (and the deprecated ``--method``), and a bank folder scored by its routes."""

from __future__ import annotations

import json

import pytest
from accelerate.state import AcceleratorState

from coldstart_peft.cli import main

DATA = ["--dataset", "demo", "--max-test-users", "20", "--seed", "1"]
SMALL = ["--dataset", "demo", "--max-test-users", "12", "--n-negatives", "9", "--seed", "1"]  # six domains


def test_baseline_evaluates_and_method_still_does_with_a_deprecation_warning(tmp_path, capsys):
    new, old = tmp_path / "new.json", tmp_path / "old.json"
    assert main(["evaluate", "--baseline", "popularity", *DATA, "--json", str(new)]) == 0
    assert "popularity on demo cold-user" in capsys.readouterr().out
    with pytest.warns(FutureWarning, match="use --baseline"):
        assert main(["evaluate", "--method", "popularity", *DATA, "--json", str(old)]) == 0
    report, deprecated = json.loads(new.read_text()), json.loads(old.read_text())
    assert deprecated["method"] == report["method"] == "popularity"
    assert deprecated["report"] == report["report"]


def test_baseline_and_adapter_are_alternatives(capsys):
    with pytest.raises(SystemExit):
        main(["evaluate", "--baseline", "popularity", "--adapter", "x", *DATA])
    assert "not allowed with argument" in capsys.readouterr().err


def _tiny_scorer(tiny_base: str, seed: int):
    """A cross-encoder with LoRA whose weights are moved off their init (LoRA's B starts at 0)."""
    import torch

    from coldstart_peft import apply_method, build_scorer, default_host

    torch.manual_seed(seed)
    scorer = build_scorer("cross-encoder", tiny_base, {"max_length": 48, "dropout": 0.0})
    apply_method(scorer, default_host().method("lora")({}), total_steps=10)
    with torch.no_grad():
        for parameter in scorer.parameters():
            if parameter.requires_grad:
                parameter.add_(torch.randn(parameter.shape) * 0.3)
    scorer.eval()
    scorer.precision = "fp32"
    return scorer


@pytest.mark.slow
def test_a_bank_folder_scores_each_candidate_with_its_own_domains_adapter(tmp_path, tiny_base, capsys):
    import argparse

    import numpy as np

    from coldstart_peft.bank import save_bank
    from coldstart_peft.data.commands import add_data_arguments, build_split_from_args
    from coldstart_peft.evaluation.ranking import segment_report

    own = {"Makeup": _tiny_scorer(tiny_base, 1), "Hair Care": _tiny_scorer(tiny_base, 2)}
    fallback = _tiny_scorer(tiny_base, 3)
    save_bank(tmp_path / "bank", own, fallback)
    report_file = tmp_path / "bank.json"
    assert main(["evaluate", "--adapter", str(tmp_path / "bank"), *SMALL, "--precision", "fp32",
                 "--json", str(report_file)]) == 0  # fmt: skip
    assert "cross-encoder + lora (bank of 2 domain adapters)" in capsys.readouterr().out
    report = json.loads(report_file.read_text())["report"]

    split = build_split_from_args(add_data_arguments(argparse.ArgumentParser()).parse_args(SMALL))
    cases = split.ranking_cases("test")
    domain_of = {i: item.domain for i, item in split.dataset.items.items()}
    assert {"Makeup", "Hair Care"} < set(domain_of.values())  # a domain without an adapter is served by the global one
    pairs = [(c.user_text, t, domain_of[i]) for c in cases for i, t in zip(c.candidate_ids, c.candidate_texts)]
    # Every candidate under its own domain's adapter: never routed by the held-out target's domain.
    by_scorer = {name: scorer.score([u for u, _, _ in pairs], [t for _, t, _ in pairs])
                 for name, scorer in [*own.items(), (None, fallback)]}  # fmt: skip
    flat = np.array([by_scorer[d if d in own else None][k] for k, (_, _, d) in enumerate(pairs)])
    expected, offset = [], 0
    for case in cases:
        expected.append(flat[offset : offset + len(case.candidate_texts)])
        offset += len(case.candidate_texts)
    wanted = segment_report(expected, cases, seed=1)
    assert set(wanted) == set(report)
    for segment, values in wanted.items():
        assert report[segment]["mrr"]["mean"] == pytest.approx(values["mrr"]["mean"], abs=1e-5), segment


def test_a_bank_is_not_evaluated_on_another_split_of_its_training_data(tmp_path, tiny_base, capsys):
    import argparse

    from coldstart_peft.bank import save_bank
    from coldstart_peft.data.commands import add_data_arguments, build_split_from_args

    split = build_split_from_args(add_data_arguments(argparse.ArgumentParser()).parse_args(SMALL))
    facts = {"split": split.kind, "split_fingerprint": split.fingerprint(), "dataset": split.dataset.name, "seed": 1,
             "data_fingerprint": split.dataset.fingerprint(), "partition_fingerprint": split.partition_fingerprint()}  # fmt: skip
    save_bank(tmp_path / "bank", {"Makeup": _tiny_scorer(tiny_base, 1)}, training=facts)
    other_seed = [*SMALL[:-1], "2"]
    assert main(["evaluate", "--adapter", str(tmp_path / "bank"), *other_seed]) == 2
    assert "include users the adapter trained on" in capsys.readouterr().err
