"""Checkpoint and resume: a run killed with SIGKILL mid-epoch resumes to the same weights and metrics.

Tolerance: on the CPU a resumed run is bit-identical to an uninterrupted one (every generator,
the data position and the optimizer state are restored), so the checks allow 1e-6 only to
stay robust to harmless reordering of float sums across library versions.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from coldstart_peft import PluginError, TrainConfig, apply_method, build_scorer, create_host, train
from coldstart_peft.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from coldstart_peft.cli import build_parser
from coldstart_peft.errors import CheckpointError, ConfigError
from coldstart_peft.training import plan_steps

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning")

TOLERANCE = 1e-6
WORKER = Path(__file__).with_name("_resume_worker.py")
HOST = create_host(load_entrypoints=False)


def _run_worker(base, out, checkpoints, *extra, env=None) -> subprocess.CompletedProcess:
    environment = {**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}
    return subprocess.run(
        [sys.executable, str(WORKER), base, str(out), str(checkpoints), *extra],
        env=environment, capture_output=True, text=True, timeout=300,
    )


def _max_weight_difference(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    return max(abs(x - y) for name in a for x, y in zip(a[name], b[name], strict=True))


@pytest.mark.slow
def test_sigkill_mid_epoch_then_resume_matches_an_uninterrupted_run(tmp_path, tiny_base):
    reference = _run_worker(tiny_base, tmp_path / "reference.json", tmp_path / "ckpt-reference")
    assert reference.returncode == 0, reference.stderr

    # 12 batches per epoch, checkpoints every 4 steps: step 7 dies mid-epoch, 3 steps after the last checkpoint.
    killed = _run_worker(tiny_base, tmp_path / "never.json", tmp_path / "ckpt", env={"COLDSTART_TEST_KILL_AT_STEP": "7"})
    assert killed.returncode == -signal.SIGKILL
    assert not (tmp_path / "never.json").exists()
    assert latest_checkpoint(tmp_path / "ckpt").name == "step-00000004"

    resumed = _run_worker(tiny_base, tmp_path / "resumed.json", tmp_path / "ckpt", "resume")
    assert resumed.returncode == 0, resumed.stderr
    want = json.loads((tmp_path / "reference.json").read_text())
    got = json.loads((tmp_path / "resumed.json").read_text())
    assert got["steps"] == want["steps"] == 24
    assert [h["step"] for h in got["history"]] == [h["step"] for h in want["history"]]
    for a, b in zip(got["history"], want["history"]):
        assert a["ndcg@10"] == pytest.approx(b["ndcg@10"], abs=TOLERANCE)
        assert a["loss"] == pytest.approx(b["loss"], abs=TOLERANCE)
    assert got["best"] == pytest.approx(want["best"], abs=TOLERANCE)
    assert _max_weight_difference(got["weights"], want["weights"]) <= TOLERANCE


def _toy_run(tiny_base, groups, cases, method_name, config, fail_at=None):
    torch.manual_seed(0)
    scorer = build_scorer("cross-encoder", tiny_base, {"max_length": 32, "dropout": 0.1}, host=HOST)
    method = HOST.method(method_name)()
    apply_method(scorer, method, total_steps=plan_steps(len(groups), config))
    if fail_at:
        def crash(model, step):
            if step == fail_at:
                raise RuntimeError("simulated crash")
            type(method).on_step(method, model, step)

        method.on_step = crash
    result = train(scorer, method, groups, cases, config)
    return scorer, method, result


def test_adalora_resume_restores_the_rank_allocator(tmp_path, tiny_base, toy_task):
    groups, valid = toy_task[0][:40], toy_task[1][:6]
    config = TrainConfig(epochs=1, batch_size=4, lr=5e-3, seed=1, progress=False, precision="fp32",
                         checkpoint_dir=str(tmp_path / "ckpt"), checkpoint_every=3)  # fmt: skip
    with pytest.raises(PluginError, match="adalora"):
        _toy_run(tiny_base, groups, valid, "adalora", config, fail_at=8)
    state = load_checkpoint(latest_checkpoint(tmp_path / "ckpt"))
    assert any(key.startswith("exp_avg_ipt/") for key in state["method_state"])

    resumed_scorer, resumed_method, resumed = _toy_run(tiny_base, groups, valid, "adalora", TrainConfig(**{**vars(config), "resume": True}))
    reference_config = TrainConfig(**{**vars(config), "checkpoint_dir": None, "checkpoint_every": None})
    scorer, method, reference = _toy_run(tiny_base, groups, valid, "adalora", reference_config)
    assert resumed.steps == reference.steps == 10
    assert resumed.best["value"] == pytest.approx(reference.best["value"], abs=TOLERANCE)
    for (name, a), (_, b) in zip(resumed_scorer.named_parameters(), scorer.named_parameters()):
        assert torch.allclose(a, b, atol=TOLERANCE), name
    assert resumed_scorer.backbone.peft_config["default"].rank_pattern == scorer.backbone.peft_config["default"].rank_pattern


def test_resume_without_a_checkpoint_starts_afresh(tmp_path, tiny_base, toy_task):
    groups = toy_task[0][:16]
    config = TrainConfig(batch_size=8, lr=5e-3, progress=False, precision="fp32",
                         checkpoint_dir=str(tmp_path / "none-yet"), checkpoint_every=1, resume=True)  # fmt: skip
    _, _, result = _toy_run(tiny_base, groups, None, "lora", config)
    assert result.steps == 2
    assert latest_checkpoint(tmp_path / "none-yet").name == "step-00000002"  # older ones are dropped


def test_checkpoint_of_another_run_is_refused(tmp_path, tiny_base, toy_task):
    groups = toy_task[0][:16]
    config = TrainConfig(batch_size=4, lr=5e-3, progress=False, precision="fp32",
                         checkpoint_dir=str(tmp_path / "ckpt"), checkpoint_every=1)  # fmt: skip
    _toy_run(tiny_base, groups, None, "lora", config)
    other = TrainConfig(**{**vars(config), "resume": True, "batch_size": 8})
    with pytest.raises(CheckpointError, match="another run"):
        _toy_run(tiny_base, groups, None, "lora", other)


def test_a_checkpoint_holding_a_pickled_object_is_refused(tmp_path):
    folder = save_checkpoint(tmp_path, 1, trainable={"w": torch.ones(2)}, best=None, method_state={},
                             optimizer={}, scheduler={}, progress={})  # fmt: skip
    torch.save({"payload": Path("/etc/passwd")}, folder / "optimizer.pt")  # any object beyond tensors/containers
    with pytest.raises(CheckpointError, match="not a plain tensor state file"):
        load_checkpoint(folder)


def test_an_unfinished_checkpoint_folder_is_ignored(tmp_path):
    save_checkpoint(tmp_path, 4, trainable={"w": torch.ones(2)}, best=None, method_state={}, optimizer={}, scheduler={}, progress={})
    (tmp_path / ".step-00000008.tmp-deadbeef").mkdir()  # what a kill during the write leaves
    (tmp_path / "step-00000012").mkdir()  # no progress.json: never finished
    assert latest_checkpoint(tmp_path).name == "step-00000004"


def test_train_cli_exposes_checkpoint_options():
    args = build_parser().parse_args(["train", "--pairs", "p.jsonl", "--out", "o", "--checkpoint-dir", "c",
                                      "--checkpoint-every", "5", "--resume"])  # fmt: skip
    assert (args.checkpoint_dir, args.checkpoint_every, args.resume) == ("c", 5, True)


@pytest.mark.parametrize("fields", [{"checkpoint_every": 0, "checkpoint_dir": "c"}, {"checkpoint_every": 5}, {"resume": True}])
def test_checkpoint_settings_are_validated(fields):
    with pytest.raises(ConfigError):
        TrainConfig(**fields).validate()



def test_resume_from_a_checkpoint_at_an_epoch_end_runs_the_next_epoch_like_an_uninterrupted_run(tmp_path, tiny_base, toy_task):
    """The checkpoint after an epoch's last batch resumes into the next epoch, reshuffled as the first run was."""
    groups, valid = toy_task[0][:16], toy_task[1][:6]
    config = TrainConfig(epochs=2, batch_size=4, lr=5e-3, seed=1, progress=False, precision="fp32",
                         checkpoint_dir=str(tmp_path / "ckpt"), checkpoint_every=4)  # fmt: skip
    with pytest.raises(PluginError, match="lora"):
        _toy_run(tiny_base, groups, valid, "lora", config, fail_at=6)
    assert load_checkpoint(latest_checkpoint(tmp_path / "ckpt"))["progress"]["batch"] == 4, "saved at the epoch's end"
    resumed_scorer, _, resumed = _toy_run(tiny_base, groups, valid, "lora", TrainConfig(**{**vars(config), "resume": True}))
    reference_config = TrainConfig(**{**vars(config), "checkpoint_dir": None, "checkpoint_every": None})
    scorer, _, reference = _toy_run(tiny_base, groups, valid, "lora", reference_config)
    assert resumed.steps == reference.steps == 8
    for (name, a), (_, b) in zip(resumed_scorer.named_parameters(), scorer.named_parameters()):
        assert torch.allclose(a, b, atol=TOLERANCE), name
