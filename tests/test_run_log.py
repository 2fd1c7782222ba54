"""What a run leaves beside its adapter: history.json always, TensorBoard logs under --out on request."""

from __future__ import annotations

import json

import pytest

from coldstart_peft.cli import main
from coldstart_peft.errors import ConfigError, MissingDependencyError
from coldstart_peft.labeled_pairs import write_pairs
from coldstart_peft.run_log import check_trackers, read_history

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning")


def _train(tmp_path, tiny_base, toy_task, *extra):
    pairs = write_pairs(tmp_path / "pairs.jsonl", toy_task[0][:32])
    valid = write_pairs(tmp_path / "valid.jsonl", toy_task[0][32:48])
    out = tmp_path / "adapter"
    code = main(["train", "--pairs", str(pairs), "--valid-pairs", str(valid), "--out", str(out), "--base-model", tiny_base,
                 "--max-steps", "4", "--eval-every", "2", "--batch-size", "8", "--no-progress", "--cv-folds", "0", *extra])  # fmt: skip
    return code, out


def test_without_tensorboard_the_run_stops_before_training_with_the_install_command(tmp_path, tiny_base, toy_task,
                                                                                    capsys, monkeypatch):  # fmt: skip
    monkeypatch.setattr("accelerate.utils.is_tensorboard_available", lambda: False)
    code, out = _train(tmp_path, tiny_base, toy_task, "--log-with", "tensorboard")
    assert code == 2
    assert "pip install 'coldstart-peft[tensorboard]'" in capsys.readouterr().err
    assert not out.exists() and not list(tmp_path.glob(".adapter*"))
    with pytest.raises(MissingDependencyError, match="pip install"):
        check_trackers("wandb, tensorboard", "runs/logs")


def test_tensorboard_in_the_library_needs_a_folder_to_write_to():
    pytest.importorskip("tensorboard")
    with pytest.raises(ConfigError, match="project_dir"):
        check_trackers("tensorboard", None)
    check_trackers(None, None)  # no tracker, nothing to check


@pytest.mark.slow
def test_a_run_saves_its_history_and_tensorboard_logs_under_out(tmp_path, tiny_base, toy_task, capsys):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from coldstart_peft import load_adapter

    code, out = _train(tmp_path, tiny_base, toy_task, "--log-with", "tensorboard")
    assert code == 0, capsys.readouterr().err
    history = read_history(out)
    assert len(history["losses"]) == history["steps"] == 4 and all(x > 0 for x in history["losses"])
    assert [v["step"] for v in history["validation"]] == [2, 4]
    assert {"ndcg@10", "loss"} <= set(history["validation"][0])
    best = max(history["validation"], key=lambda v: v["ndcg@10"])
    assert history["best"]["step"] == best["step"] and history["best"]["value"] == pytest.approx(best["ndcg@10"])

    runs = [p.parent for p in (out / "logs").rglob("events.out.tfevents.*")]
    assert runs and not list(tmp_path.glob(".adapter.logs*"))  # the staging folder moved in
    events = EventAccumulator(str(runs[0]))
    events.Reload()
    assert len(events.Scalars("train/loss")) == 4 and "valid/ndcg@10" in events.Tags()["scalars"]
    load_adapter(out)  # the logs do not stop the folder loading as an adapter


def test_per_domain_logging_asks_for_its_own_folder(tmp_path, capsys):
    assert main(["train", "--per-domain", "--dataset", "demo", "--out", str(tmp_path / "bank"), "--log-with", "tensorboard"]) == 2
    assert "--project-dir" in capsys.readouterr().err and not (tmp_path / "bank").exists()
