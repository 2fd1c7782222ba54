"""Files that would once load as an empty dataset, or drop a column without a word, now say what to do."""

from __future__ import annotations

import json
import warnings

import pytest

from coldstart_peft.data import ColumnMapping, load_dataset, load_pixrec, load_tabular
from coldstart_peft.errors import (
    DataNotFoundError,
    DataWarning,
    EmptyDatasetError,
    MissingColumnsError,
    WrongFileKindError,
)

RECBOLE_INTER = "user_id:token\titem_id:token\ttimestamp:float\nu1\ti1\t1\nu1\ti2\t2\n"
RECBOLE_ITEM = "item_id:token\ttitle:token_seq\ni1\tRed lipstick\ni2\tBlue soap\n"
PAIR = {"user_text": "likes red", "item_text": "red cream", "label": 1}


def _tables(tmp_path, items="item_id,title\ni1,Red lipstick\n", events="user_id,item_id,timestamp\nu1,i1,1\n"):
    (tmp_path / "items.csv").write_text(items)
    (tmp_path / "interactions.csv").write_text(events)
    return tmp_path / "items.csv", tmp_path / "interactions.csv"


@pytest.mark.parametrize("name", ["pairs.jsonl", "pairs.csv"])
def test_a_labeled_pairs_file_as_dataset_names_the_pairs_flag(tmp_path, name):
    path = tmp_path / name
    path.write_text(json.dumps(PAIR) + "\n" if name.endswith(".jsonl") else "user_text,item_text,label\nlikes red,red cream,1\n")
    with pytest.raises(WrongFileKindError, match=r"labeled-pairs file .*--pairs FILE"):
        load_dataset(path, cache=False)


def test_a_labeled_pairs_file_as_a_dataset_table_names_the_pairs_flag(tmp_path):
    items, _ = _tables(tmp_path)
    (tmp_path / "pairs.jsonl").write_text(json.dumps(PAIR) + "\n")
    with pytest.raises(WrongFileKindError, match="--pairs"):
        load_tabular(items, tmp_path / "pairs.jsonl")


def test_a_recbole_file_read_as_pixrec_says_it_is_recbole(tmp_path):
    (tmp_path / "shop.inter").write_text(RECBOLE_INTER)
    with pytest.raises(EmptyDatasetError, match=r"no items and no interactions .*bad_json=3.*RecBole atomic header"):
        load_pixrec(tmp_path / "shop.inter")


def test_a_recbole_file_under_another_name_is_refused_with_what_to_rename(tmp_path):
    (tmp_path / "shop.txt").write_text(RECBOLE_INTER)
    with pytest.raises(WrongFileKindError, match=r"RecBole atomic header .*rename it NAME.inter"):
        load_dataset(tmp_path / "shop.txt", cache=False)


def test_a_lone_table_as_dataset_names_the_table_flags(tmp_path):
    items, _ = _tables(tmp_path)
    with pytest.raises(WrongFileKindError, match="--items FILE --interactions FILE"):
        load_dataset(items, cache=False)


def test_recbole_inter_without_its_item_file_says_which_file_is_missing(tmp_path):
    (tmp_path / "shop.inter").write_text(RECBOLE_INTER)
    with pytest.raises(DataNotFoundError, match=r"has shop.inter but no shop.item"):
        load_dataset(tmp_path, cache=False)


def test_a_folder_with_items_but_no_interactions_names_the_flags(tmp_path):
    (tmp_path / "products.csv").write_text("item_id,title\ni1,x\n")
    with pytest.raises(DataNotFoundError, match=r"has products.csv but no interactions table .*--items FILE"):
        load_dataset(tmp_path, cache=False)


@pytest.mark.parametrize("which", ["items", "events"])
def test_header_only_tables_are_an_empty_dataset_error(tmp_path, which):
    kwargs = {"items": "item_id,title\n"} if which == "items" else {"events": "user_id,item_id,timestamp\n"}
    items, events = _tables(tmp_path, **kwargs)
    expected = "no items" if which == "items" else "no interactions"
    with pytest.raises(EmptyDatasetError, match=expected):
        load_tabular(items, events)


def test_empty_recbole_log_is_an_empty_dataset_error(tmp_path):
    (tmp_path / "shop.inter").write_text("user_id:token\titem_id:token\ttimestamp:float\n")
    (tmp_path / "shop.item").write_text(RECBOLE_ITEM)
    with pytest.raises(EmptyDatasetError, match="no interactions"):
        load_dataset(tmp_path / "shop.inter", cache=False)


def test_present_but_unused_columns_warn_with_the_flag_that_maps_them(tmp_path):
    items, events = _tables(tmp_path, items="item_id,title,maker,sales_rank\ni1,Red lipstick,Acme,3\n",
                            events="user_id,item_id,timestamp,stars\nu1,i1,1,4\n")  # fmt: skip
    with pytest.warns(DataWarning) as caught:
        dataset = load_tabular(items, events)
    messages = [str(w.message) for w in caught]
    assert any("'maker', 'sales_rank' not used" in m and "--column brand=maker" in m for m in messages)
    assert any("'stars' not used" in m and "--column label=stars" in m for m in messages)
    assert dataset.report.unused == {"items.csv": ["maker", "sales_rank"], "interactions.csv": ["stars"]}
    assert "unused in items.csv: maker, sales_rank" in dataset.report.summary()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # mapped, nothing is left unused
        mapped = load_tabular(items, events, ColumnMapping(brand="maker", extra=["sales_rank"], label="stars"))
    assert mapped.items["i1"].brand == "Acme" and mapped.items["i1"].attributes == {"sales_rank": "3"}
    assert mapped.interactions[0].label == 4.0


def test_columns_with_the_usual_names_are_used_not_dropped(tmp_path):
    items, events = _tables(tmp_path, items="item_id,title,brand,category,price\ni1,Red lipstick,Acme,Beauty>Makeup,3.5\n",
                            events="user_id,item_id,timestamp,rating\nu1,i1,1,4\n")  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        dataset = load_tabular(items, events)
    item = dataset.items["i1"]
    assert (item.brand, item.categories, item.price, item.domain) == ("Acme", ("Beauty", "Makeup"), 3.5, "Makeup")
    assert dataset.interactions[0].label == 4.0
    with pytest.warns(DataWarning, match="'brand', 'category', 'price' not used"):
        off = load_tabular(items, events, ColumnMapping(detect=False))
    assert off.items["i1"].brand is None and off.report.unused["items.csv"] == ["brand", "category", "price"]


def test_a_missing_column_suggests_the_column_flag_for_a_likely_name(tmp_path):
    items, events = _tables(tmp_path, items="item_id,product_name\ni1,Red lipstick\n", events="user,item_id,ts\nu1,i1,1\n")
    with pytest.raises(MissingColumnsError, match=r"--column title=product_name"):
        load_tabular(items, events)
    (tmp_path / "items.csv").write_text("item_id,title\ni1,Red lipstick\n")
    with pytest.raises(MissingColumnsError, match=r"--column user_id=user; --column order=ts"):
        load_tabular(items, events)
