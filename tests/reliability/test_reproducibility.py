"""Same seed, same data, same machine: identical metrics; result files say what they depend on."""

from __future__ import annotations

import json

import pytest

from coldstart_peft.cli import main
from coldstart_peft.labeled_pairs import write_pairs
from coldstart_peft.provenance import environment_info, file_fingerprint, groups_fingerprint

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning")


def _weights(folder) -> bytes:
    """The adapter's tensors as bytes (the manifest holds a timestamp, so it is left out)."""
    return b"".join((folder / name).read_bytes() for name in ("adapter_model.safetensors", "scorer_head.safetensors"))


def _train(tmp_path, name, tiny_base, source, seed, *flags):
    out = tmp_path / name
    code = main(["train", *source, "--out", str(out), "--base-model", tiny_base, "--no-progress",
                 "--seed", str(seed), *flags])  # fmt: skip
    assert code == 0
    return _weights(out)


def test_same_cli_seed_writes_byte_identical_weights_on_pairs(tmp_path, tiny_base, toy_task):
    """No seeding by the test: ``--seed`` alone must fix adapter initialisation, shuffling and dropout."""
    pairs = write_pairs(tmp_path / "pairs.jsonl", toy_task[0][:48])
    source = ["--pairs", str(pairs), "--scorer", "cross-encoder", "--max-steps", "4", "--method-config", "dropout=0.1"]
    first = _train(tmp_path, "a", tiny_base, source, 5)
    assert _train(tmp_path, "b", tiny_base, source, 5) == first
    assert _train(tmp_path, "c", tiny_base, source, 6) != first, "the seed is really used"


@pytest.mark.slow
def test_same_cli_seed_writes_byte_identical_weights_on_a_split(tmp_path, tiny_base):
    """The default recipe (bi-encoder, priors, calibration) on a dataset split, through the CLI."""
    source = ["--dataset", "demo", "--max-test-users", "20", "--max-steps", "3", "--valid-users", "10",
              "--max-groups", "64", "--calibration-users", "20"]  # fmt: skip
    first = _train(tmp_path, "a", tiny_base, source, 2)
    assert _train(tmp_path, "b", tiny_base, source, 2) == first
    assert _train(tmp_path, "c", tiny_base, source, 3) != first


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
