"""The command line: plugins, demo, train on a pairs file or a dataset split, evaluate."""

from __future__ import annotations

import json

import pytest
from peft import PeftModel

from coldstart_peft.backbone import default_model_path
from coldstart_peft.cli import main
from coldstart_peft.labeled_pairs import write_pairs
from coldstart_peft.priors import DEFAULT_FEATURES

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning")


def test_plugins_lists_builtin_methods_and_scorers(capsys):
    assert main(["plugins"]) == 0
    out = capsys.readouterr().out
    for name in ("full", "lora", "cross-encoder", "bi-encoder"):
        assert f"\n{name} " in out
    assert "built-in" in out


@pytest.mark.slow
def test_demo_runs_end_to_end_and_saves_a_plain_peft_adapter(tmp_path, capsys):
    code = main(["demo", "--seconds", "5", "--users", "400", "--items", "120", "--out", str(tmp_path)])
    assert code == 0
    out = capsys.readouterr().out
    for row in ("popularity", "bi-encoder without fine-tuning", "bi-encoder + lora"):
        assert row in out
    assert "trainable of" in out
    adapter = tmp_path / "adapter"
    assert sum(p.stat().st_size for p in adapter.iterdir()) < 1_000_000
    from transformers import AutoModel

    model = PeftModel.from_pretrained(AutoModel.from_pretrained(default_model_path()), str(adapter))
    assert any("lora_B" in name for name, _ in model.named_parameters())
    assert (tmp_path / "split.json").is_file()


def test_train_on_pairs_file_writes_adapter(tmp_path, tiny_base, toy_task, capsys):
    pairs = tmp_path / "pairs.jsonl"
    write_pairs(pairs, toy_task[0][:24])
    out = tmp_path / "adapter"
    code = main(["train", "--pairs", str(pairs), "--out", str(out), "--base-model", tiny_base,
                 "--max-steps", "2", "--no-progress", "--method-config", "r=4"])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    manifest = json.loads((out / "coldstart.json").read_text())
    assert manifest["method"] == "lora" and manifest["method_config"]["r"] == 4
    assert "adapter:" in capsys.readouterr().out

    code = main(["evaluate", "--adapter", str(out), "--pairs", str(pairs)])
    assert code == 0
    assert "auc" in capsys.readouterr().out


def test_train_on_dataset_split_then_evaluate_the_adapter_on_the_same_split(tmp_path, tiny_base, capsys):
    out = tmp_path / "adapter"
    data = ["--dataset", "demo", "--max-test-users", "20", "--seed", "1"]
    code = main(["train", *data, "--out", str(out), "--base-model", tiny_base, "--max-steps", "3",
                 "--no-progress", "--valid-users", "10", "--max-groups", "64", "--train-negatives", "3"])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    printed = capsys.readouterr().out
    assert "best validation ndcg@10" in printed and "adapter:" in printed
    manifest = json.loads((out / "coldstart.json").read_text())
    facts = manifest["extra"]
    assert facts["dataset"] == "demo" and facts["split"] == "cold-user"
    assert facts["validation"]["step"] >= 1
    # Unset flags give the benchmark's winning recipe: bi-encoder, three priors, calibrated weights.
    assert manifest["scorer"] == "bi-encoder"
    assert manifest["priors"]["features"] == list(DEFAULT_FEATURES) and (out / "prior_tables.safetensors").is_file()
    assert set(facts["calibration"]) == set(DEFAULT_FEATURES)

    code = main(["evaluate", "--adapter", str(out), *data])
    assert code == 0
    table = capsys.readouterr().out
    assert "bi-encoder + lora" in table and "ndcg@10" in table
    # The evaluation ran on the split the adapter was trained beside: same fingerprint.
    assert facts["split_fingerprint"] in table


def test_bad_input_exits_with_a_clear_error(tmp_path, capsys):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    assert main(["train", "--pairs", str(empty), "--out", str(tmp_path / "a")]) == 2
    assert "holds no pairs" in capsys.readouterr().err
    assert main(["train", "--pairs", str(empty), "--out", str(tmp_path / "a"), "--batch-size", "0"]) == 2
    assert "batch_size" in capsys.readouterr().err


@pytest.mark.realdata
def test_evaluate_popularity_on_beauty(capsys):
    code = main(["evaluate", "--baseline", "popularity", "--dataset", "beauty", "--max-test-users", "200"])
    assert code == 0
    out = capsys.readouterr().out
    assert "popularity on beauty cold-user" in out and "ndcg@10" in out


def test_valid_pairs_validate_and_pick_the_best_step(tmp_path, tiny_base, toy_task, capsys):
    pairs = write_pairs(tmp_path / "pairs.jsonl", toy_task[0][:48])
    valid = write_pairs(tmp_path / "valid.jsonl", toy_task[0][48:64])
    out = tmp_path / "adapter"
    code = main(["train", "--pairs", str(pairs), "--valid-pairs", str(valid), "--out", str(out), "--base-model", tiny_base,
                 "--scorer", "cross-encoder", "--max-steps", "4", "--eval-every", "2", "--no-progress"])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    assert "best validation ndcg@10" in capsys.readouterr().out
    validation = json.loads((out / "coldstart.json").read_text())["extra"]["validation"]
    assert validation["step"] in (2, 4) and validation["candidates"] == 4  # one positive, three negatives


def test_valid_pairs_without_pairs_is_refused(tmp_path, capsys):
    valid = tmp_path / "valid.jsonl"
    valid.write_text('{"user_text": "u", "item_text": "i", "label": 1}\n')
    code = main(["train", "--dataset", "demo", "--valid-pairs", str(valid), "--out", str(tmp_path / "o")])
    assert code == 2 and "--valid-pairs validates a --pairs run" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_pairs_with_dataset_tables_is_refused(tmp_path, capsys):
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text('{"user_text": "u", "item_text": "i", "label": 1}\n')
    table = tmp_path / "items.csv"
    table.write_text("item_id,title\n1,soap\n")
    code = main(["train", "--pairs", str(pairs), "--items", str(table), "--interactions", str(table),
                 "--out", str(tmp_path / "o")])  # fmt: skip
    assert code == 2 and "--pairs trains on a labeled-pairs file" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
