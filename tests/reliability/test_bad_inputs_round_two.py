"""The second bad-input table: outputs over the user's files, untrusted base models, the wrong split,
timestamps, lost work and raw exceptions (issue 19).

Every row names the error it must raise or checks the documented recovery; after every row
every file that existed before it (the user's files, the saved adapters, the dataset) must be
byte-for-byte intact.
"""

from __future__ import annotations

import errno
import json
import socket
import time
from pathlib import Path

import pytest
import torch

import coldstart_peft.outputs as outputs
from coldstart_peft import apply_method, build_scorer, create_host, load_adapter, save_adapter
from coldstart_peft.checkpoint import load_checkpoint, save_checkpoint
from coldstart_peft.cli import build_parser
from coldstart_peft.data import cold_user_split, load_dataset, load_tabular
from coldstart_peft.data.splits import ColdStartSplit
from coldstart_peft.errors import (
    AdapterError,
    BaseModelUnavailableError,
    CheckpointError,
    ConfigError,
    CorruptAdapterError,
    DataError,
    MalformedFileError,
    OverwriteRefusedError,
    SplitError,
    SplitMismatchError,
    UnknownNameError,
    UnwritableOutputError,
)
from coldstart_peft.labeled_pairs import read_pairs
from coldstart_peft.retrieval import Recommender
from tests.reliability._intact import damaged, digests

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning", "ignore::UserWarning")
HOST = create_host(load_entrypoints=False)
COLOURS = ["red", "blue", "green", "black", "white", "pink"]
KINDS = ["lipstick", "shampoo", "brush", "cream", "perfume"]
PAIR = json.dumps({"user_text": "likes red soap", "item_text": "red cream", "label": 1}) + "\n"
DEEP = "[" * 100_000 + "]" * 100_000
DATA_FLAGS = ["--k-context", "1", "--n-negatives", "3", "--max-test-users", "3"]


def _dataset_folder(folder: Path) -> Path:
    folder.mkdir()
    items = [f"{c}-{k}" for c in COLOURS for k in KINDS]
    (folder / "items.csv").write_text("item_id,title\n" + "".join(f"{i},{i.replace('-', ' ')}\n" for i in items))
    rows = [f"u{u},{items[(u * 7 + t * 3) % len(items)]},{1_700_000_000 + t}\n" for u in range(40) for t in range(4)]
    (folder / "interactions.csv").write_text("user_id,item_id,timestamp\n" + "".join(rows))
    return folder


def _adapter(base: str, scorer: str, folder: Path, extra: dict) -> Path:
    torch.manual_seed(0)
    model = build_scorer(scorer, base, {"max_length": 32}, host=HOST)
    apply_method(model, HOST.method("lora")({"r": 2}))
    with torch.no_grad():  # lora_B starts at zero: make the adapter differ from the bare base model
        for name, parameter in model.backbone.named_parameters():
            if "lora_B" in name:
                parameter.normal_(0, 0.5)
    return save_adapter(model, folder, extra=extra)


@pytest.fixture(scope="module")
def world(tmp_path_factory, tiny_base):
    """A dataset folder and two adapters trained (nominally) on its seed-0 cold-user split."""
    root = tmp_path_factory.mktemp("world")
    data = _dataset_folder(root / "data")
    split = cold_user_split(load_dataset(str(data)), k=1, n_negatives=3, seed=0, max_test_users=3)
    facts = {"dataset": split.dataset.name, "split": split.kind, "seed": 0, "data_fingerprint": split.dataset.fingerprint(),
             "split_fingerprint": split.fingerprint(), "partition_fingerprint": split.partition_fingerprint()}  # fmt: skip
    cross = _adapter(tiny_base, "cross-encoder", root / "cross", facts)
    bi = _adapter(tiny_base, "bi-encoder", root / "bi", facts)
    return {"root": root, "data": data, "cross": cross, "bi": bi, "base": tiny_base}


class Ctx:
    """What a row needs: the world, and a scratch folder already holding the user's own files."""

    def __init__(self, tmp: Path, world: dict, monkeypatch):
        self.tmp, self.world, self.monkeypatch = tmp, world, monkeypatch
        self.user = tmp / "user"
        (self.user / "mine").mkdir(parents=True)
        (self.user / "pairs.jsonl").write_text(PAIR * 4)
        (self.user / "notes.md").write_text("my notes")
        (self.user / "results.json").write_text(json.dumps({"mine": [1, 2, 3]}))
        (self.user / "mine" / "a.txt").write_text("keep me")

    def write(self, name: str, content: str | bytes) -> Path:
        path = self.tmp / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
        return path

    def cli(self, *argv: str):
        """Run a command as the CLI would, letting its named error out (``main`` prints it and exits 2)."""
        args = build_parser().parse_args(list(argv))
        return args.func(args)

    def evaluate(self, *argv: str):
        return self.cli("evaluate", "--dataset", str(self.world["data"]), *DATA_FLAGS, *argv)

    def train(self, *argv: str):
        args = ["train", "--pairs", str(self.user / "pairs.jsonl"), "--base-model", self.world["base"], "--no-progress",
                "--max-steps", "1", "--scorer", "cross-encoder", "--scorer-config", "max_length=32", *argv]  # fmt: skip
        if "--out" not in argv:
            args += ["--out", str(self.tmp / "out")]
        return self.cli(*args)

    def moved_adapter(self, base_model) -> Path:
        """A copy of the cross-encoder adapter whose manifest names ``base_model``."""
        folder = self.tmp / "moved"
        folder.mkdir()
        for path in self.world["cross"].iterdir():
            (folder / path.name).write_bytes(path.read_bytes())
        manifest = json.loads((folder / "coldstart.json").read_text())
        manifest["base_model"]["name_or_path"] = base_model
        (folder / "coldstart.json").write_text(json.dumps(manifest))
        return folder

    def edited_manifest(self, edit) -> Path:
        folder = self.moved_adapter(self.world["base"])
        manifest = json.loads((folder / "coldstart.json").read_text())
        replaced = edit(manifest)  # an edit returns a string to write instead of the manifest
        (folder / "coldstart.json").write_text(replaced if isinstance(replaced, str) else json.dumps(manifest))
        return folder


# --- recoveries and multi-step rows ---


def _report_is_replaced(ctx):
    report = ctx.user / "report.json"
    ctx.evaluate("--baseline", "popularity", "--json", str(report))
    first = json.loads(report.read_text())
    ctx.evaluate("--baseline", "popularity", "--json", str(report))  # ours: a rerun replaces it
    assert first["format"] == outputs.REPORT_FORMAT and json.loads(report.read_text())["n_cases"] == first["n_cases"]


def _split_is_replaced(ctx):
    path = ctx.user / "split.json"
    ctx.evaluate("--baseline", "popularity", "--save-split", str(path))
    ctx.evaluate("--baseline", "popularity", "--save-split", str(path), "--seed", "1")
    assert ColdStartSplit.load(path, load_dataset(str(ctx.world["data"]))).config["seed"] == 1


def _user_step_folder_survives(ctx):
    root = ctx.tmp / "ck"
    (root / "step-00000000").mkdir(parents=True)
    (root / "step-00000000" / "mine.txt").write_text("not a checkpoint")
    state = {"trainable": {"w": torch.ones(2)}, "best": None, "method_state": {}, "optimizer": {}, "scheduler": {}}
    save_checkpoint(root, 1, progress={"step": 1}, **state)
    save_checkpoint(root, 2, progress={"step": 2}, **state)
    assert (root / "step-00000000" / "mine.txt").read_text() == "not a checkpoint"
    assert not (root / "step-00000001").exists() and load_checkpoint(root / "step-00000002")["progress"]["step"] == 2


def _user_folder_named_like_a_checkpoint(ctx):
    root = ctx.tmp / "ck"
    (root / "step-00000001").mkdir(parents=True)
    (root / "step-00000001" / "mine.txt").write_text("x")
    state = {"trainable": {"w": torch.ones(2)}, "best": None, "method_state": {}, "optimizer": {}, "scheduler": {}}
    save_checkpoint(root, 1, progress={"step": 1}, **state)


def _read_only(ctx, folder: Path):
    """Simulate a read-only mount at ``folder`` (tests run as root, for whom chmod does not bite)."""
    real = outputs._probe

    def probe(where: Path) -> None:
        if Path(where).resolve().is_relative_to(folder.resolve()):
            raise OSError(errno.EROFS, "Read-only file system")
        real(where)

    ctx.monkeypatch.setattr(outputs, "_probe", probe)


def _read_only_checkpoint_dir(ctx):
    _read_only(ctx, ctx.tmp / "ro")
    (ctx.tmp / "ro").mkdir()
    ctx.train("--checkpoint-dir", str(ctx.tmp / "ro" / "ck"), "--checkpoint-every", "1")


def _recommend_from_read_only_adapter(ctx):
    adapter = ctx.world["bi"]
    _read_only(ctx, adapter)
    ctx.monkeypatch.setenv("COLDSTART_PEFT_CACHE", str(ctx.tmp / "cache"))
    before = digests(adapter)
    first = Recommender.load(adapter, dataset=str(ctx.world["data"]), progress=False).recommend(["red-cream"], k=3)
    cached = list((ctx.tmp / "cache").rglob("*.safetensors"))
    again = Recommender.load(adapter, dataset=str(ctx.world["data"]), progress=False).recommend(["red-cream"], k=3)
    assert len(cached) == 1 and not (adapter / "index").exists() and digests(adapter) == before
    assert [r.item_id for r in first] == [r.item_id for r in again]


def _offline_load(ctx, base_model):
    """Loading must fail fast with no socket opened (a hub id used to cost 48 s of retries)."""

    def no_network(*args, **kwargs):
        raise AssertionError("load_adapter tried to reach the network")

    ctx.monkeypatch.setattr(socket.socket, "connect", no_network)
    started = time.perf_counter()
    try:
        load_adapter(ctx.moved_adapter(base_model), host=HOST)
    finally:
        assert time.perf_counter() - started < 20
    # `--base-model` and `base_model=` are what the message tells the user to pass.


def _explicit_base_recovers(ctx):
    folder = ctx.moved_adapter("attacker-org/evil-model")
    scorer = load_adapter(folder, base_model=ctx.world["base"], host=HOST)
    reference = load_adapter(ctx.world["cross"], host=HOST)
    users, items = ["likes red"], ["red cream"]
    assert torch.allclose(torch.as_tensor(scorer.score(users, items)), torch.as_tensor(reference.score(users, items)))


def _allowed_split_mismatch(ctx, caplog):
    report = ctx.user / "report.json"
    ctx.evaluate("--adapter", str(ctx.world["cross"]), "--seed", "1", "--allow-split-mismatch", "--json", str(report))
    assert "split_mismatch" in json.loads(report.read_text())
    assert any("WARNING" in r.getMessage() and "--allow-split-mismatch" in r.getMessage() for r in caplog.records)


def _same_partition_other_size(ctx):
    # Another number of test users or negatives keeps the training users out of the test side: no refusal.
    ctx.cli("evaluate", "--dataset", str(ctx.world["data"]), "--k-context", "1", "--n-negatives", "2",
            "--max-test-users", "2", "--adapter", str(ctx.world["cross"]))  # fmt: skip


def _log(ctx, rows: str, mapping=None):
    items = ctx.write("items.csv", "item_id,title\na,A\nb,B\nc,C\n")
    return load_tabular(items, ctx.write("log.csv", "user_id,item_id,timestamp\n" + rows), mapping)


def _iso_newest_first(ctx):
    ds = _log(ctx, "u1,c,2024-03-03T10:00:00Z\nu1,b,2024-03-02T09:00:00+01:00\nu1,a,2024-03-01\n")
    assert ds.sequences()["u1"] == ["a", "b", "c"]
    assert "sorted by column 'timestamp' (iso-8601)" in ds.report.summary()


def _epoch_forms(ctx):
    ds = _log(ctx, "u1,c,1700000200000\nu1,a,1700000000\nu1,b,1700000100.5\n")  # ms and s in one column
    assert ds.sequences()["u1"] == ["a", "b", "c"] and "epoch-ms, epoch-s" in ds.report.order


def _ties_reported(ctx):
    ds = _log(ctx, "u1,b,5\nu1,a,5\nu1,c,1\nu2,a,5\n")
    assert ds.sequences()["u1"] == ["c", "b", "a"] and ds.report.order_ties == 1
    assert "1 ties kept in file order" in ds.report.summary()


def _unreadable_timestamp_skipped(ctx):
    ds = _log(ctx, "u1,a,1\nu1,b,next tuesday\nu1,c,3\n")
    assert ds.sequences()["u1"] == ["a", "c"] and ds.report.skipped["unreadable_timestamp"] == 1


def _tabular_deep_json_skipped(ctx):
    items = ctx.write("items.jsonl", json.dumps({"item_id": "a", "title": "A"}) + "\n" + DEEP + "\n")
    ds = load_tabular(items, ctx.write("log.csv", "user_id,item_id,timestamp\nu1,a,1\n"))
    assert ds.report.skipped["bad_json"] == 1 and list(ds.items) == ["a"]


def _checkpoint_progress(ctx, content: str):
    folder = ctx.tmp / "ck" / "step-00000001"
    folder.mkdir(parents=True)
    (folder / "progress.json").write_text(content)
    load_checkpoint(folder)


ROWS = [
    # --- 1. no command writes over a file it did not create ---
    ("out: evaluate --json over the user's JSON", lambda c: c.evaluate("--baseline", "popularity", "--json", str(c.user / "results.json")),
     OverwriteRefusedError, "not a file this library wrote"),
    ("out: evaluate --json over the user's notes", lambda c: c.evaluate("--baseline", "popularity", "--json", str(c.user / "notes.md")),
     OverwriteRefusedError, "not a file this library wrote"),
    ("out: evaluate --json is a folder", lambda c: c.evaluate("--baseline", "popularity", "--json", str(c.user / "mine")),
     OverwriteRefusedError, "is a folder"),
    ("out: evaluate --json refused before the adapter loads", lambda c: c.evaluate("--adapter", str(c.tmp / "nowhere"), "--json", str(c.user / "notes.md")),
     OverwriteRefusedError, "not a file this library wrote"),
    ("out: evaluate --json under a file", lambda c: c.evaluate("--baseline", "popularity", "--json", str(c.user / "notes.md" / "r.json")),
     UnwritableOutputError, "is a file"),
    ("out: a report of ours is replaced", _report_is_replaced, None, None),
    ("out: --save-split over the user's JSON", lambda c: c.evaluate("--baseline", "popularity", "--save-split", str(c.user / "results.json")),
     OverwriteRefusedError, "--save-split"),
    ("out: --save-split over the user's pairs (train)", lambda c: c.cli("train", "--dataset", str(c.world["data"]), "--out", str(c.tmp / "o"),
                                                                         "--save-split", str(c.user / "pairs.jsonl")),
     OverwriteRefusedError, "--save-split"),
    ("out: --save-split is a folder", lambda c: c.evaluate("--baseline", "popularity", "--save-split", str(c.user / "mine")), OverwriteRefusedError, "folder"),
    ("out: split.save over the user's file (API)", lambda c: cold_user_split(load_dataset(str(c.world["data"])), k=1).save(c.user / "notes.md"),
     OverwriteRefusedError, "split file"),
    ("out: a split of ours is replaced", _split_is_replaced, None, None),
    ("out: train --out holding the user's pairs", lambda c: c.train("--out", str(c.user)), OverwriteRefusedError, "not an adapter this library wrote"),
    ("out: train --out under a file", lambda c: c.train("--out", str(c.user / "notes.md" / "adapter")), UnwritableOutputError, "is a file"),
    ("out: demo --out whose adapter/ is the user's", lambda c: (c.write("demo/adapter/mine.txt", "x"), c.cli("demo", "--out", str(c.tmp / "demo")))[1],
     OverwriteRefusedError, "not an adapter this library wrote"),
    ("out: demo --out whose split.json is the user's", lambda c: (c.write("demo/split.json", "{}"), c.cli("demo", "--out", str(c.tmp / "demo")))[1],
     OverwriteRefusedError, "not a file this library wrote"),
    ("out: recommend --index over the user's file", lambda c: c.cli("recommend", "--adapters", str(c.world["bi"]), "--dataset", str(c.world["data"]),
                                                                     "--index", str(c.user / "notes.md")),
     OverwriteRefusedError, "index file"),
    ("out: recommend --index is a folder", lambda c: c.cli("recommend", "--adapters", str(c.world["bi"]), "--dataset", str(c.world["data"]),
                                                            "--index", str(c.user / "mine")),
     OverwriteRefusedError, "is a folder"),
    ("out: checkpoints beside the user's step-* folder", _user_step_folder_survives, None, None),
    ("out: a user's folder named like the checkpoint", _user_folder_named_like_a_checkpoint, CheckpointError, "not a checkpoint"),
    # --- 3. untrusted adapters never reach the network ---
    ("net: manifest names a hub id", lambda c: _offline_load(c, "attacker-org/evil-model"), BaseModelUnavailableError,
     "attacker-org/evil-model.*base_model=.*--base-model"),
    ("net: manifest names a moved folder", lambda c: _offline_load(c, str(c.tmp / "gone" / "tiny-bert")), BaseModelUnavailableError,
     "not on this machine"),
    ("net: manifest names an invalid repo id", lambda c: _offline_load(c, "a//b:c"), BaseModelUnavailableError, "--base-model"),
    ("net: explicit base_model loads it", _explicit_base_recovers, None, None),
    ("net: evaluate --pairs on a moved base", lambda c: c.cli("evaluate", "--adapter", str(c.moved_adapter("attacker-org/evil-model")),
                                                              "--pairs", str(c.user / "pairs.jsonl")),
     BaseModelUnavailableError, "--base-model"),
    # --- 4. evaluating on the wrong split ---
    ("split: evaluate --seed 1 on a seed-0 adapter", lambda c: c.evaluate("--adapter", str(c.world["cross"]), "--seed", "1"),
     SplitMismatchError, "seed 0.*seed 1.*--allow-split-mismatch"),
    ("split: evaluate another protocol of the data", lambda c: c.evaluate("--adapter", str(c.world["cross"]), "--split", "cold-item"),
     SplitMismatchError, "cold-item"),
    ("split: --allow-split-mismatch warns and marks the report", "caplog", None, None),
    ("split: same partition, fewer test users", _same_partition_other_size, None, None),
    # --- 5. timestamps ---
    ("time: ISO-8601, newest first", _iso_newest_first, None, None),
    ("time: epoch seconds and milliseconds", _epoch_forms, None, None),
    ("time: ties are reported", _ties_reported, None, None),
    ("time: an unreadable timestamp is skipped and counted", _unreadable_timestamp_skipped, None, None),
    ("time: no readable timestamp at all", lambda c: _log(c, "u1,a,monday\nu1,b,tuesday\n"), MalformedFileError, "ColumnMapping\\(order=None\\)"),
    # --- 6. failures that lose work ---
    ("work: --checkpoint-dir under a file", lambda c: c.train("--checkpoint-dir", str(c.user / "notes.md" / "ck"), "--checkpoint-every", "1"),
     UnwritableOutputError, "is a file"),
    ("work: --checkpoint-dir on a read-only disk", _read_only_checkpoint_dir, UnwritableOutputError, "Read-only file system"),
    ("work: recommend from a read-only adapter folder", _recommend_from_read_only_adapter, None, None),
    # --- 7. raw exceptions ---
    ("raw: --method-config r as a string", lambda c: c.train("--method-config", 'r="16"'), ConfigError, "r takes int"),
    ("raw: --method-config target_modules as a string", lambda c: c.train("--method-config", "target_modules=query"), ConfigError, "list"),
    ("raw: --scorer-config max_length as a list", lambda c: c.train("--scorer-config", "max_length=[1]"), ConfigError, "max_length takes int"),
    ("raw: --method-config nested too deeply", lambda c: c.train("--method-config", "r=" + DEEP), ConfigError, "nested too deeply"),
    ("raw: misspelled --metric", lambda c: c.train("--metric", "ndcg@1O"), ConfigError, "ndcg@10"),
    ("raw: misspelled --log-with", lambda c: c.train("--log-with", "tensorbord"), ConfigError, "tensorboard"),
    ("raw: negative --eval-every", lambda c: c.train("--eval-every", "-1"), ConfigError, "eval_every"),
    ("raw: misspelled scorer option value", lambda c: c.train("--scorer-config", "head=linaer"), ConfigError, "similarity"),
    ("raw: unknown scorer before any data loads", lambda c: c.train("--scorer", "tri-encoder", "--pairs", str(c.tmp / "none.jsonl")),
     UnknownNameError, "known scorers"),
    ("raw: manifest nested too deeply", lambda c: load_adapter(c.edited_manifest(lambda m: DEEP), host=HOST), CorruptAdapterError, "not valid JSON"),
    ("raw: manifest method_config is a list", lambda c: load_adapter(c.edited_manifest(lambda m: m.update(method_config=[1])), host=HOST),
     CorruptAdapterError, "method_config"),
    ("raw: manifest base_model is a string", lambda c: load_adapter(c.edited_manifest(lambda m: m.update(base_model="x")), host=HOST),
     CorruptAdapterError, "base_model"),
    ("raw: manifest lacks the scorer", lambda c: load_adapter(c.edited_manifest(lambda m: m.pop("scorer") and None), host=HOST), CorruptAdapterError, "scorer"),
    ("raw: manifest method r is a string", lambda c: load_adapter(c.edited_manifest(lambda m: m["method_config"].update(r="2")), host=HOST),
     ConfigError, "r takes int"),
    ("raw: pairs line nested too deeply", lambda c: read_pairs(c.write("p.jsonl", PAIR + DEEP + "\n")), DataError, "nested too deeply"),
    ("raw: items JSONL nested too deeply", _tabular_deep_json_skipped, None, None),
    ("raw: split file nested too deeply", lambda c: ColdStartSplit.load(c.write("s.json", DEEP), load_dataset(str(c.world["data"]))), SplitError, "cannot read"),
    ("raw: split file is a list", lambda c: ColdStartSplit.load(c.write("s.json", "[1]"), load_dataset(str(c.world["data"]))), SplitError, "not a split"),
    ("raw: checkpoint progress nested too deeply", lambda c: _checkpoint_progress(c, DEEP), CheckpointError, "unreadable"),
    ("raw: checkpoint progress is a list", lambda c: _checkpoint_progress(c, "[]"), CheckpointError, "not a JSON object"),
    ("raw: checkpoint dir is a file (API)", lambda c: __import__("coldstart_peft.checkpoint").checkpoint.check_checkpoint_dir(c.user / "notes.md"),
     UnwritableOutputError, "is a file"),
    ("raw: adapter folder missing for --adapter", lambda c: c.evaluate("--adapter", str(c.tmp / "nowhere")), AdapterError, "not a coldstart-peft adapter"),
]


def test_the_second_table_covers_every_class():
    assert len(ROWS) >= 50 and len({row[0] for row in ROWS}) == len(ROWS)
    assert {row[0].split(":")[0] for row in ROWS} == {"out", "net", "split", "time", "work", "raw"}


@pytest.mark.parametrize(("action", "error", "match"), [row[1:] for row in ROWS], ids=[row[0] for row in ROWS])
def test_bad_input(action, error, match, tmp_path, world, monkeypatch, caplog):
    ctx = Ctx(tmp_path, world, monkeypatch)
    before = {"scratch": digests(tmp_path), "world": digests(world["root"])}
    run = (lambda c: _allowed_split_mismatch(c, caplog)) if action == "caplog" else action
    if error is None:
        run(ctx)  # the documented recovery: no error, checked inside the row
    else:
        with pytest.raises(error, match=match):
            run(ctx)
    monkeypatch.undo()
    assert not damaged(before["scratch"], tmp_path), "a bad input damaged a file that existed before it"
    assert not damaged(before["world"], world["root"]), "a bad input damaged the dataset or a saved adapter"
