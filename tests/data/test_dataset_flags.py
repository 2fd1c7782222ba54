"""``--items``, ``--interactions`` and ``--column``: every command that takes ``--dataset`` reads the user's own tables."""

from __future__ import annotations

import argparse
import importlib

import pytest

from coldstart_peft.cli import main
from coldstart_peft.data import Dataset
from coldstart_peft.data.commands import add_data_arguments, build_split_from_args, dataset_argument
from coldstart_peft.errors import ConfigError

TITLES = ["red lipstick", "pink lipstick", "beard oil", "dry shampoo", "hair spray", "nail polish"]


def _own_tables(tmp_path):
    """A catalog and a log under names and columns of the user's choosing."""
    (tmp_path / "catalogue.tsv").write_text(
        "sku\tproduct_name\tmaker\n" + "".join(f"s{i}\t{t}\tbrand{i % 2}\n" for i, t in enumerate(TITLES))
    )
    rows = [f"c{u},s{(u + j) % 6},{j}\n" for u in range(40) for j in range(3)]
    (tmp_path / "clicks.csv").write_text("customer,sku,when\n" + "".join(rows))
    return tmp_path / "catalogue.tsv", tmp_path / "clicks.csv"


COLUMNS = ["--column", "item_id=sku", "--column", "title=product_name", "--column", "brand=maker",
           "--column", "user_id=customer", "--column", "order=when"]  # fmt: skip


def _parse(*argv):
    return add_data_arguments(argparse.ArgumentParser()).parse_args(list(argv))


def test_items_interactions_and_columns_build_the_split(tmp_path):
    items, events = _own_tables(tmp_path)
    args = _parse("--items", str(items), "--interactions", str(events), *COLUMNS, "--k-context", "1", "--n-negatives", "2")
    split = build_split_from_args(args)
    dataset = split.dataset
    assert dataset.name == "clicks" and len(dataset.sequences()) == 40
    assert dataset.sequences()["c1"] == ["s1", "s2", "s3"]
    assert (dataset.items["s2"].title, dataset.items["s2"].brand) == ("beard oil", "brand0")
    assert all(len(case.candidates) == 3 for case in split.test)


def test_column_maps_a_folder_dataset_and_order_empty_keeps_file_order(tmp_path):
    (tmp_path / "items.csv").write_text("item_id,name\na,A\nb,B\n")
    (tmp_path / "interactions.csv").write_text("user_id,item_id\nu,b\nu,a\n")
    dataset = dataset_argument(_parse("--dataset", str(tmp_path), "--column", "title=name", "--column", "order="))
    assert isinstance(dataset, Dataset)
    assert dataset.sequences() == {"u": ["b", "a"]} and dataset.items["a"].title == "A"
    assert dataset.report.order == "file order"


@pytest.mark.parametrize("argv, message", [
    (["--items", "x.csv"], "--items and --interactions go together"),
    (["--dataset", "demo", "--items", "x.csv", "--interactions", "y.csv"], "either --dataset demo or --items"),
    (["--column", "title=name"], "named dataset"),
    (["--dataset", ".", "--column", "colour=red"], "FIELD one of"),
    (["--dataset", ".", "--column", "title="], "title is required"),
])  # fmt: skip
def test_inconsistent_data_flags_are_config_errors(argv, message):
    with pytest.raises(ConfigError, match=message):
        dataset_argument(_parse(*argv))


def test_without_table_flags_the_dataset_name_passes_through_unloaded():
    assert dataset_argument(_parse("--dataset", "demo")) == "demo"


@pytest.mark.parametrize("command", ["train", "evaluate", "recommend", "search"])
def test_every_command_with_dataset_takes_the_table_flags(command):
    commands = argparse.ArgumentParser().add_subparsers()
    importlib.import_module(f"coldstart_peft.cli.{command}").register(commands)
    (parser,) = commands.choices.values()
    flags = {flag for action in parser._actions for flag in action.option_strings}
    assert {"--dataset", "--items", "--interactions", "--column"} <= flags


def test_evaluate_runs_on_the_users_own_tables(tmp_path, capsys):
    items, events = _own_tables(tmp_path)
    code = main(["evaluate", "--baseline", "popularity", "--items", str(items), "--interactions", str(events), *COLUMNS,
                 "--k-context", "1", "--n-negatives", "2"])  # fmt: skip
    assert code == 0
    assert capsys.readouterr().out.startswith("popularity on clicks cold-user")
