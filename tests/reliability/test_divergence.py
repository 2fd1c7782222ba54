"""A run whose loss or weights turn NaN stops with a named error and never writes an adapter or checkpoint."""

from __future__ import annotations

import pytest
import torch

from coldstart_peft import TrainConfig, apply_method, build_scorer, create_host, save_adapter, train
from coldstart_peft.checkpoint import save_checkpoint
from coldstart_peft.cli import main
from coldstart_peft.errors import TrainingDivergedError
from coldstart_peft.labeled_pairs import write_pairs

HOST = create_host(load_entrypoints=False)
DIVERGING = ["--lr", "1e30", "--max-steps", "6", "--no-progress"]


def _cli(capsys, *argv):
    code = main(list(argv))
    return code, capsys.readouterr().err


def test_a_huge_learning_rate_exits_with_the_named_error_and_writes_nothing(tmp_path, tiny_base, toy_task, capsys):
    pairs = write_pairs(tmp_path / "pairs.jsonl", toy_task[0][:48])
    out = tmp_path / "adapter"
    code, err = _cli(capsys, "train", "--pairs", str(pairs), "--out", str(out), "--base-model", tiny_base, *DIVERGING)
    assert code == 2
    assert "training diverged at step" in err and "lower learning rate" in err and "Traceback" not in err
    assert not out.exists()


def test_an_existing_adapter_survives_a_diverged_run(tmp_path, tiny_base, toy_task, capsys):
    pairs = write_pairs(tmp_path / "pairs.jsonl", toy_task[0][:48])
    out = tmp_path / "adapter"
    assert main(["train", "--pairs", str(pairs), "--out", str(out), "--base-model", tiny_base, "--max-steps", "2",
                 "--no-progress"]) == 0  # fmt: skip
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    code, _ = _cli(capsys, "train", "--pairs", str(pairs), "--out", str(out), "--base-model", tiny_base, *DIVERGING)
    assert code == 2
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


@pytest.mark.slow
def test_the_default_recipe_diverging_fails_before_calibration(tmp_path, tiny_base, capsys):
    out = tmp_path / "adapter"
    code, err = _cli(capsys, "train", "--dataset", "demo", "--max-test-users", "20", "--valid-users", "10",
                     "--max-groups", "64", "--out", str(out), "--base-model", tiny_base, *DIVERGING)  # fmt: skip
    assert code == 2 and "training diverged" in err
    assert not out.exists()


def _scorer(tiny_base):
    scorer = build_scorer("cross-encoder", tiny_base, {"max_length": 32}, host=HOST)
    method = HOST.method("lora")({"r": 2})
    apply_method(scorer, method, total_steps=4)
    return scorer, method


def test_saving_non_finite_weights_is_refused(tmp_path, tiny_base):
    scorer, _ = _scorer(tiny_base)
    with torch.no_grad():
        next(p for n, p in scorer.named_parameters() if "lora_B" in n).fill_(float("nan"))
    with pytest.raises(TrainingDivergedError, match="NaN or infinite"):
        save_adapter(scorer, tmp_path / "adapter")
    assert not (tmp_path / "adapter").exists()


def test_resuming_from_a_nan_checkpoint_is_refused(tmp_path, tiny_base, toy_task):
    scorer, method = _scorer(tiny_base)
    trainable = {n: p.detach().clone() for n, p in scorer.named_parameters() if p.requires_grad}
    trainable[next(iter(trainable))].fill_(float("nan"))
    save_checkpoint(tmp_path / "ckpt", 2, trainable=trainable, best=None, method_state={}, optimizer={},
                    scheduler={}, progress={})  # fmt: skip
    config = TrainConfig(max_steps=4, batch_size=8, progress=False, precision="fp32",
                         checkpoint_dir=str(tmp_path / "ckpt"), resume=True)  # fmt: skip
    with pytest.raises(TrainingDivergedError, match="NaN or infinite weights"):
        train(scorer, method, toy_task[0][:32], None, config)
