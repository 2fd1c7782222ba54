"""Same seed, same data, same machine: identical metrics; result files say what they depend on."""

from __future__ import annotations

import json

import pytest
import torch

from coldstart_peft import TrainConfig, apply_method, build_scorer, create_host, train
from coldstart_peft.cli import main
from coldstart_peft.labeled_pairs import write_pairs
from coldstart_peft.provenance import environment_info, file_fingerprint, groups_fingerprint
from coldstart_peft.training import plan_steps

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning")
HOST = create_host(load_entrypoints=False)


def _run(tiny_base, groups, cases, seed):
    torch.manual_seed(seed)
    scorer = build_scorer("cross-encoder", tiny_base, {"max_length": 32, "dropout": 0.1}, host=HOST)
    method = HOST.method("lora")({"r": 2, "dropout": 0.1})
    config = TrainConfig(batch_size=8, lr=5e-3, seed=seed, progress=False, mixed_precision="no", eval_every=2)
    apply_method(scorer, method, total_steps=plan_steps(len(groups), config))
    result = train(scorer, method, groups, cases, config)
    weights = torch.cat([p.detach().flatten() for p in scorer.parameters() if p.requires_grad])
    return result, weights


def test_same_seed_gives_identical_metrics_and_weights(tiny_base, toy_task):
    groups, cases = toy_task[0][:48], toy_task[1][:8]
    first, first_weights = _run(tiny_base, groups, cases, seed=5)
    second, second_weights = _run(tiny_base, groups, cases, seed=5)
    assert [h for h in first.history] == [h for h in second.history]  # exact, not approximate
    assert torch.equal(first_weights, second_weights)
    _, other_weights = _run(tiny_base, groups, cases, seed=6)
    assert not torch.equal(first_weights, other_weights)  # the seed is really used


def test_fingerprints_follow_the_data(toy_task, tmp_path):
    groups = toy_task[0]
    assert groups_fingerprint(groups) == groups_fingerprint(list(groups))
    assert groups_fingerprint(groups) != groups_fingerprint(groups[1:])
    assert groups_fingerprint(groups) != groups_fingerprint(list(reversed(groups)))
    (tmp_path / "a").write_text("x")
    (tmp_path / "b").write_text("y")
    assert file_fingerprint(tmp_path / "a") != file_fingerprint(tmp_path / "b")
    assert set(environment_info()["libraries"]) >= {"torch", "transformers", "peft", "accelerate", "coldstart-peft"}


def test_trained_adapter_records_seed_versions_and_data_fingerprint(tmp_path, tiny_base, toy_task):
    pairs = write_pairs(tmp_path / "pairs.jsonl", toy_task[0][:8])
    out = tmp_path / "adapter"
    assert main(["train", "--pairs", str(pairs), "--out", str(out), "--base-model", tiny_base, "--max-steps", "1",
                 "--no-progress", "--seed", "11", "--method-config", "r=2"]) == 0  # fmt: skip
    manifest = json.loads((out / "coldstart.json").read_text())
    assert manifest["extra"]["seed"] == 11
    assert manifest["extra"]["data_fingerprint"] == file_fingerprint(pairs)
    assert len(manifest["extra"]["groups_fingerprint"]) == 16
    assert manifest["environment"]["libraries"]["peft"]
