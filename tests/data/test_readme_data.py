"""The README's "Bring your own data" examples run as written on tiny files with the headers it shows."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from coldstart_peft.cli import main

pa = pytest.importorskip("pyarrow")
import pyarrow.parquet as pq  # noqa: E402

# The examples map every column they have: a column the README would drop is a failure, not a warning.
pytestmark = pytest.mark.filterwarnings("error::coldstart_peft.errors.DataWarning")

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()
SECTION = README.split("## Bring your own data\n", 1)[1].split("\n## ", 1)[0]
N_ITEMS, N_USERS, EVENTS_PER_USER = 120, 40, 5
KINDS = ["lipstick", "shampoo", "soap", "brush", "serum", "polish"]


def _blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", SECTION, flags=re.S)


def _commands() -> list[list[str]]:
    lines = "\n".join(_blocks("bash")).replace("\\\n", " ").splitlines()
    return [shlex.split(line)[1:] for line in lines if line.startswith("coldstart-peft ")]


def _catalog():
    for i in range(N_ITEMS):
        kind = KINDS[i % len(KINDS)]
        yield f"i{i}", f"{kind} number {i}", f"brand{i % 4}", ("Beauty", kind.title()), 1.0 + i % 9


def _events():
    for u in range(N_USERS):
        for j in range(EVENTS_PER_USER):
            yield f"u{u}", f"i{(7 * u + j) % N_ITEMS}", 1_700_000_000 + 60 * j, float(1 + (u + j) % 5)


def _write_files(root: Path) -> None:
    """The files the README describes, under the names and headers it shows."""
    (root / "shop").mkdir()
    (root / "shop" / "shop.inter").write_text("user_id:token\titem_id:token\trating:float\ttimestamp:float\n" + "".join(
        f"{u}\t{i}\t{r}\t{t}\n" for u, i, t, r in _events()))  # fmt: skip
    (root / "shop" / "shop.item").write_text("item_id:token\ttitle:token_seq\tbrand:token\tcategories:token_seq\tprice:float\n" + "".join(
        f"{i}\t{title}\t{brand}\t{', '.join(map(repr, path))}\t{price}\n" for i, title, brand, path, price in _catalog()))  # fmt: skip
    (root / "catalogue.csv").write_text("sku,product_name,maker,path,cost\n" + "".join(
        f"{i},{title},{brand},{'>'.join(path)},{price}\n" for i, title, brand, path, price in _catalog()))  # fmt: skip
    (root / "clicks.csv").write_text("customer,sku,when\n" + "".join(f"{u},{i},{t}\n" for u, i, t, _ in _events()))
    products = [{"item_id": i, "title": t, "brand": b, "category": ">".join(p), "price": c} for i, t, b, p, c in _catalog()]
    pq.write_table(pa.Table.from_pylist(products), root / "products.parquet")
    events = [{"user_id": u, "item_id": i, "timestamp": t, "rating": r} for u, i, t, r in _events()]
    pq.write_table(pa.Table.from_pylist(events), root / "events.parquet")
    pairs = [{"user_text": f"likes {kind}", "item_text": text, "label": label}
             for kind in KINDS for text, label in ((f"red {kind}", 1), (f"blue {KINDS[KINDS.index(kind) - 1]}", 0))]  # fmt: skip
    pq.write_table(pa.Table.from_pylist(pairs), root / "pairs.parquet")


def test_the_section_has_an_example_per_format():
    commands = [" ".join(c) for c in _commands()]
    assert any("--dataset shop" in c for c in commands)  # RecBole folder
    assert any("--dataset shop/shop.inter" in c for c in commands)  # RecBole .inter file
    assert any("catalogue.csv" in c and "--column title=product_name" in c for c in commands)
    assert any("products.parquet" in c for c in commands)
    assert any(c.startswith("train --pairs pairs.parquet") for c in commands)
    assert len(_blocks("python")) == 1


def test_readme_data_examples_run_as_written(tmp_path, monkeypatch, capsys, tiny_base):
    _write_files(tmp_path)
    monkeypatch.chdir(tmp_path)
    for argv in _commands():
        if argv[0] == "train":  # the bundled MiniLM would train for minutes; a tiny model shows the same path
            argv = [*argv, "--base-model", tiny_base, "--max-steps", "2", "--no-progress"]
        code = main(argv)
        captured = capsys.readouterr()
        assert code == 0, f"{shlex.join(argv)}: {captured.err}"
        if argv[0] == "evaluate" and "--baseline" in argv:
            assert "overall" in captured.out and "ndcg@10" in captured.out
    assert (tmp_path / "runs" / "pairs" / "coldstart.json").is_file()

    namespace: dict = {}
    exec(compile(_blocks("python")[0], "README.md", "exec"), namespace)
    shop, mine, products = namespace["shop"], namespace["mine"], namespace["products"]
    assert len(shop.items) == len(mine.items) == len(products.items) == N_ITEMS
    assert shop.sequences() == mine.sequences() == products.sequences()
    assert {(i.item_id, i.brand, i.categories, i.price) for i in shop.items.values()} == {
        (i.item_id, i.brand, i.categories, i.price) for i in mine.items.values()
    }
    assert mine.items["i3"].title == "brush number 3" and mine.items["i3"].domain == "Brush"
    assert products.interactions[0].label == shop.interactions[0].label == 1.0
