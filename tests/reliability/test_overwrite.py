"""Saving replaces only what the library wrote: a folder holding anything else is refused before training."""

from __future__ import annotations

import pytest

from coldstart_peft import apply_method, build_scorer, create_host, save_adapter
from coldstart_peft.cli import main
from coldstart_peft.errors import OverwriteRefusedError
from coldstart_peft.labeled_pairs import write_pairs

HOST = create_host(load_entrypoints=False)


def test_train_refuses_an_out_folder_holding_the_users_files(tmp_path, tiny_base, toy_task, capsys):
    folder = tmp_path / "p"
    folder.mkdir()
    pairs = write_pairs(folder / "pairs.jsonl", toy_task[0][:16])
    (folder / "notes.md").write_text("notes")
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    code = main(["train", "--pairs", str(pairs), "--out", str(folder), "--base-model", tiny_base, "--max-steps", "1",
                 "--no-progress"])  # fmt: skip
    assert code == 2 and "not an adapter this library wrote" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before


def test_an_adapter_folder_or_an_empty_one_is_replaced(tmp_path, tiny_base):
    scorer = build_scorer("cross-encoder", tiny_base, {"max_length": 32}, host=HOST)
    apply_method(scorer, HOST.method("lora")({"r": 2}))
    (tmp_path / "empty").mkdir()
    save_adapter(scorer, tmp_path / "empty")
    save_adapter(scorer, tmp_path / "empty")  # now an adapter: replacing it is what saving is for
    assert (tmp_path / "empty" / "coldstart.json").is_file()
    (tmp_path / "a-file").write_text("x")
    with pytest.raises(OverwriteRefusedError, match="not an adapter folder"):
        save_adapter(scorer, tmp_path / "a-file")
    assert (tmp_path / "a-file").read_text() == "x"
