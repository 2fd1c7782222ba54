"""The bad-input table: each row feeds one bad input to a loader, the CLI, a config or the API.

Every row names the error it must raise (a :class:`ColdStartError` subclass whose message says
what to do) or checks the documented recovery; after every row an adapter saved beforehand
must be byte-for-byte intact and still load.
"""

from __future__ import annotations

import errno
import hashlib
import json
from pathlib import Path

import pytest
import torch

import coldstart_peft.artifact as artifact
from coldstart_peft import (
    AdapterError,
    ConfigError,
    PluginError,
    TrainConfig,
    UnknownNameError,
    apply_method,
    build_scorer,
    create_host,
    load_adapter,
    save_adapter,
    train,
)
from coldstart_peft.cli import main
from coldstart_peft.data import ColumnMapping, Dataset, Item, TextConfig, TextSerializer, cold_domain_split, cold_user_split, load_dataset, load_tabular, make_split
from coldstart_peft.data.schema import Interaction
from coldstart_peft.errors import (
    DataError,
    DataNotFoundError,
    DuplicateIdError,
    EmptyHistoryError,
    MalformedFileError,
    MissingColumnsError,
    SplitError,
    UnknownItemError,
)
from coldstart_peft.evaluation.ranking import evaluate_ranking
from coldstart_peft.examples import RankingCase, TrainGroup
from coldstart_peft.labeled_pairs import read_pairs

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning", "ignore::UserWarning")
HOST = create_host(load_entrypoints=False)
GOOD_PAIR = json.dumps({"user_text": "likes red soap", "item_text": "red cream", "label": 1}) + "\n"
ITEMS = "item_id,title,price\na,red soap,1.5\nb,blue soap,2\nc,green soap,3\n"
INTERACTIONS = "user_id,item_id,timestamp\nu1,a,1\nu1,b,2\nu2,c,1\nu2,a,2\n"


class Ctx:
    """What a row needs: a scratch folder, the tiny base model, a saved adapter."""

    def __init__(self, tmp: Path, base: str, adapter: Path):
        self.tmp, self.base, self.adapter = tmp, base, adapter

    def write(self, name: str, content: str | bytes) -> Path:
        path = self.tmp / name
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
        return path

    def tables(self, items: str | bytes = ITEMS, interactions: str = INTERACTIONS, suffix: str = ".csv", **mapping):
        items_path = self.write(f"items{suffix}", items)
        return load_tabular(items_path, self.write("log.csv", interactions), ColumnMapping(**mapping) if mapping else None)

    def scorer(self):
        torch.manual_seed(0)
        return build_scorer("cross-encoder", self.base, {"max_length": 32}, host=HOST)

    def cli(self, *argv: str) -> None:
        """Run the CLI; a handled error exits 2 with one line — re-raise it as ``CliRefused`` with that line."""
        pairs = self.write("cli_pairs.jsonl", GOOD_PAIR * 4)
        args = ["train", "--pairs", str(pairs), "--base-model", self.base, "--no-progress", "--max-steps", "1", *argv]
        if "--out" not in argv:
            args += ["--out", str(self.tmp / "cli_out")]
        _cli_exit(args)


class CliRefused(Exception):
    """The CLI printed ``error: ...`` and exited with status 2 (no traceback)."""


def _cli_exit(argv: list[str]) -> None:
    if main(argv) == 2:
        raise CliRefused("exit status 2")


def _recover_price(ctx, raw):
    dataset = ctx.tables(ITEMS.replace("1.5", raw), price="price")
    assert dataset.items["a"].price is None  # dropped, not printed as "$nan" / "$-3.00"
    assert dataset.report.repaired["invalid_price_dropped"] == 1
    assert "$" not in TextSerializer().item(dataset.items["a"])


def _recover_huge_title(ctx):
    dataset = ctx.tables(ITEMS.replace("red soap", "red soap " * 12_000))  # ~108 kB
    text = TextSerializer(TextConfig()).item(dataset.items["a"])
    assert len(text.split()) <= sum(TextConfig().budgets[f] for f in ("title", "brand", "category")) + 4


def _recover_no_history_user(ctx):
    assert TextSerializer().user([]) == "New user"  # a brand-new user still gets a context


def _k_beyond_history(ctx):
    split = cold_user_split(ctx.tables(), k=10)  # users with <= k events cannot be cold users: skipped
    evaluate_ranking(lambda users, items: torch.zeros(len(items)), split.ranking_cases("test"))


def _disk_full_mid_save(ctx, monkeypatch):
    scorer = ctx.scorer()
    apply_method(scorer, HOST.method("lora")({"r": 2}))
    real_save_file = artifact.save_file

    def full_disk(tensors, path, *args, **kwargs):
        real_save_file(tensors, path, *args, **kwargs)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(artifact, "save_file", full_disk)  # dies after the method files, mid-save
    save_adapter(scorer, ctx.adapter)


def _plugin_raising_in_prepare(ctx):
    class Broken(HOST.method("lora")):
        def prepare(self, model, config, *, total_steps=None):
            raise IndexError("list index out of range")

    apply_method(ctx.scorer(), Broken({"r": 2}))


def _unwritable_dir(ctx):
    blocker = ctx.write("a-file", "not a folder")
    scorer = ctx.scorer()
    apply_method(scorer, HOST.method("lora")({"r": 2}))
    save_adapter(scorer, blocker / "adapter")  # a parent that is a file cannot hold a folder, even for root


ROWS = [
    # --- labeled-pairs loader ---
    ("pairs: empty file", lambda c: read_pairs(c.write("p.jsonl", "")), DataError, "holds no pairs"),
    ("pairs: wrong encoding (latin-1)", lambda c: read_pairs(c.write("p.jsonl", GOOD_PAIR.replace("soap", "savon é").encode("latin-1"))), DataError, "not UTF-8"),
    ("pairs: non-UTF-8 bytes", lambda c: read_pairs(c.write("p.csv", b"user_text,item_text,label\n\xff\xfe,x,1\n")), DataError, "not UTF-8"),
    ("pairs: missing column", lambda c: read_pairs(c.write("p.csv", "user_text,label\nu,1\n")), MissingColumnsError, "item_text"),
    ("pairs: empty value", lambda c: read_pairs(c.write("p.jsonl", '{"user_text": "u", "item_text": "", "label": 1}\n')), MissingColumnsError, "no value"),
    ("pairs: broken JSON line", lambda c: read_pairs(c.write("p.jsonl", GOOD_PAIR + "{oops\n")), DataError, r"p.jsonl:2 is not valid JSON"),
    ("pairs: JSON array row", lambda c: read_pairs(c.write("p.jsonl", "[1, 2]\n")), DataError, "JSON object"),
    ("pairs: NaN label", lambda c: read_pairs(c.write("p.csv", "user_text,item_text,label\nu,i,nan\n")), DataError, "outside"),
    ("pairs: text label", lambda c: read_pairs(c.write("p.csv", "user_text,item_text,label\nu,i,yes\n")), DataError, "not a number"),
    ("pairs: unknown file type", lambda c: read_pairs(c.write("p.xml", "<x/>")), DataError, "unknown pairs file type"),
    ("pairs: missing file", lambda c: read_pairs(c.tmp / "nope.jsonl"), DataError, "does not exist"),
    # --- tabular catalog loader ---
    ("items: empty file", lambda c: c.tables(""), MissingColumnsError, "lacks columns"),
    ("items: missing columns", lambda c: c.tables("id,name\na,x\n"), MissingColumnsError, "ColumnMapping"),
    ("items: duplicate ids", lambda c: c.tables(ITEMS + "a,again,1\n"), DuplicateIdError, "deduplicate"),
    ("items: non-UTF-8 bytes", lambda c: c.tables(b"item_id,title\na,caf\xe9 soap\n"), MalformedFileError, "re-encode it as UTF-8"),
    ("items: non-UTF-8 JSONL", lambda c: c.tables(b'{"item_id": "a", "title": "\xff"}\n', suffix=".jsonl"), MalformedFileError, "not UTF-8"),
    ("items: unsupported format", lambda c: c.tables("x", suffix=".xlsx"), MalformedFileError, "use .csv"),
    ("items: missing file", lambda c: load_tabular(c.tmp / "none.csv", c.tmp / "none.csv"), DataNotFoundError, "does not exist"),
    ("log: unknown item ids", lambda c: c.tables(interactions=INTERACTIONS + "u3,zz,1\n"), UnknownItemError, "missing from the item table"),
    ("items: negative price", lambda c: _recover_price(c, "-3"), None, None),
    ("items: NaN price", lambda c: _recover_price(c, "nan"), None, None),
    ("items: 100 kB title", _recover_huge_title, None, None),
    ("users: no history (serializer)", _recover_no_history_user, None, None),
    ("users: no history (dataset)", lambda c: Dataset("d", {"a": Item("a", "t")}, [Interaction("u1", "a", 0.0)], user_attributes={"u9": {"age": 3}}).validate(),
     EmptyHistoryError, "fewer than 1"),  # fmt: skip
    # --- splits ---
    ("split: K larger than history", _k_beyond_history, DataError, "no ranking cases"),
    ("split: negative K", lambda c: cold_user_split(c.tables(), k=-1), SplitError, "must be >= 0"),
    ("split: unknown domain", lambda c: cold_domain_split(c.tables(), domain="Garden"), UnknownNameError, "known domains"),
    ("split: unknown kind", lambda c: make_split(c.tables(), kind="cold-moon"), UnknownNameError, "cold-user"),
    ("dataset: unknown name", lambda c: load_dataset("no-such-dataset"), UnknownNameError, "known datasets"),
    # --- API ---
    ("api: zero candidates", lambda c: RankingCase("u", [], 0), DataError, "at least one candidate"),
    ("api: target out of range", lambda c: RankingCase("u", ["a"], 3), DataError, "not an index"),
    ("api: group without items", lambda c: TrainGroup("u", [], []), DataError, "at least one item"),
    ("api: labels do not match items", lambda c: TrainGroup("u", ["a", "b"], [1.0]), DataError, "one label per item"),
    ("api: no training groups", lambda c: train(c.scorer(), HOST.method("lora")(), [], None, TrainConfig(progress=False)), ConfigError, "empty"),
    ("api: evaluate zero cases", lambda c: evaluate_ranking(lambda u, i: torch.zeros(len(i)), []), DataError, "no ranking cases"),
    ("api: unknown method", lambda c: HOST.method("lora-xl"), UnknownNameError, "known methods: .*lora"),
    ("api: unknown scorer", lambda c: build_scorer("tri-encoder", c.base, host=HOST), UnknownNameError, "known scorers"),
    ("api: unknown method field", lambda c: HOST.method("lora")({"rank": 4}), ConfigError, "valid fields"),
    ("api: not an adapter folder", lambda c: load_adapter(c.tmp, host=HOST), AdapterError, "not a coldstart-peft adapter"),
    ("api: plugin raises in prepare", lambda c: _plugin_raising_in_prepare(c), PluginError, "failed in prepare: IndexError"),
    ("api: disk full mid-save", "disk-full", AdapterError, "No space left.*untouched"),
    ("api: unwritable output dir", lambda c: _unwritable_dir(c), AdapterError, "choose a writable location"),
    # --- config ---
    ("config: batch size 0", lambda c: TrainConfig(batch_size=0).validate(), ConfigError, "batch_size"),
    ("config: negative lr", lambda c: TrainConfig(lr=-1e-3).validate(), ConfigError, "positive"),
    ("config: NaN lr", lambda c: TrainConfig(lr=float("nan")).validate(), ConfigError, "positive"),
    ("config: zero epochs", lambda c: TrainConfig(epochs=0).validate(), ConfigError, "epochs"),
    ("config: unknown precision", lambda c: TrainConfig(precision="fp8").validate(), ConfigError, "precision"),
    ("config: warm-up ratio 1.5", lambda c: TrainConfig(warmup_ratio=1.5).validate(), ConfigError, "warmup_ratio"),
    # --- command line (exit status 2, one line, no traceback) ---
    ("cli: unknown method", lambda c: c.cli("--method", "lora-xl"), CliRefused, None),
    ("cli: batch size 0", lambda c: c.cli("--batch-size", "0"), CliRefused, None),
    ("cli: negative lr", lambda c: c.cli("--lr", "-0.1"), CliRefused, None),
    ("cli: malformed --method-config", lambda c: c.cli("--method-config", "r16"), CliRefused, None),
    ("cli: --out is a file", lambda c: c.cli("--out", str(c.write("out.txt", "x"))), CliRefused, None),
    ("cli: checkpoints inside --out", lambda c: c.cli("--checkpoint-dir", str(c.tmp / "cli_out" / "ck"), "--checkpoint-every", "1"), CliRefused, None),
    ("cli: unwritable --out", lambda c: c.cli("--out", str(c.write("blocker", "x") / "adapter")), CliRefused, None),
    ("cli: missing --dataset folder", lambda c: _cli_exit(["train", "--dataset", str(c.tmp / "nowhere"), "--out", str(c.tmp / "o")]), CliRefused, None),
]


def _digest(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()


@pytest.fixture(scope="module")
def saved_adapter(tmp_path_factory, tiny_base):
    """An adapter saved before any bad input: it must survive every row unchanged."""
    torch.manual_seed(0)
    scorer = build_scorer("cross-encoder", tiny_base, {"max_length": 32}, host=HOST)
    apply_method(scorer, HOST.method("lora")({"r": 2}))
    return save_adapter(scorer, tmp_path_factory.mktemp("precious") / "adapter")


def test_the_table_covers_at_least_25_bad_inputs():
    assert len(ROWS) >= 25
    assert len({row[0] for row in ROWS}) == len(ROWS)


@pytest.mark.parametrize(("action", "error", "match"), [row[1:] for row in ROWS], ids=[row[0] for row in ROWS])
def test_bad_input(action, error, match, tmp_path, tiny_base, saved_adapter, monkeypatch, capsys):
    before = _digest(saved_adapter)
    ctx = Ctx(tmp_path, tiny_base, saved_adapter)
    run = (lambda c: _disk_full_mid_save(c, monkeypatch)) if action == "disk-full" else action
    if error is None:
        run(ctx)  # the documented recovery: no error, checked inside the row
    else:
        with pytest.raises(error, match=match):
            run(ctx)
    if error is CliRefused:
        err = capsys.readouterr().err
        assert err.strip().splitlines()[-1].startswith("error: ") and "Traceback" not in err
    monkeypatch.undo()
    assert _digest(saved_adapter) == before, "a bad input damaged the adapter saved before it"
    assert not list(saved_adapter.parent.glob(".adapter.*")), "a failed save left temporary folders behind"


def test_the_precious_adapter_still_loads(saved_adapter):
    assert load_adapter(saved_adapter, host=HOST).manifest["method"] == "lora"
