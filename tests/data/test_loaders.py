"""Loaders on tiny hand-written files, including the malformed rows real files contain."""

import gzip
import json

import pytest

from coldstart_peft.data import (
    ColumnMapping,
    load_amazon2014,
    load_amazon2023,
    load_dataset,
    load_movielens100k,
    load_pixrec,
    load_tabular,
    load_unisrec,
)
from coldstart_peft.data.registry import DATA_ENV, data_dir
from coldstart_peft.errors import (
    DataNotFoundError,
    DuplicateIdError,
    MissingColumnsError,
    UnknownItemError,
    UnknownNameError,
)

RECBOLE_HEADER = "item_id:token\ttitle:token\tsales_type:token\tsales_rank:float\tcategories:token_seq\tprice:float\tbrand:token\n"


def _write_beauty(tmp_path, item_rows: str):
    (tmp_path / "seq.txt").write_text("1 1 2 3\n2 3 4\n")
    maps = {"id2user": {"1": "U1", "2": "U2"}, "id2item": {"1": "A", "2": "B", "3": "C", "4": "D"}}
    with gzip.open(tmp_path / "maps.json.gz", "wt") as f:  # gzip must be transparent
        json.dump(maps, f)
    (tmp_path / "meta.item").write_text(RECBOLE_HEADER + item_rows)
    return load_amazon2014(tmp_path / "seq.txt", tmp_path / "maps.json", tmp_path / "meta.item")


def test_recbole_quirks_are_repaired_and_counted(tmp_path):
    rows = (
        "A\tPlain lip balm\tBeauty\t10.0\t'Beauty', 'Makeup', 'Lips'\t3.5\tAcme\n"
        'B\t"Cream with a\nnewline"\t\t\t\'Beauty\', \'Skin Care\'\t11.28\tOrganix\n'
        'C\t"350BUY \t Nail beads"\tBeauty\t1.0\t"\'Beauty\', \'Fragrance\', ""Women\'s"""\t0.93\tMy Sky\n'
        "D\tNo path\tBeauty\t1.0\t\t\t\n"
        "E\ttoo\tmany\tfields\there\t1\t2\t3\n"
    )
    ds = _write_beauty(tmp_path, rows)
    assert ds.items["B"].title == "Cream with a newline"
    assert ds.items["C"].categories == ("Beauty", "Fragrance", "Women's")
    assert ds.items["C"].domain == "Fragrance"
    assert ds.items["D"].domain == "Other"  # documented fallback for a path without a second level
    assert ds.report.repaired == {"multiline_field": 1, "embedded_tab": 1}
    assert ds.report.skipped == {"wrong_field_count": 1}
    assert ds.report.rows_read["meta.item"] == 6  # physical lines: the newline costs one extra
    assert ds.sequences() == {"U1": ["A", "B", "C"], "U2": ["C", "D"]}


def test_interaction_with_item_missing_from_metadata_is_kept_and_counted(tmp_path):
    ds = _write_beauty(tmp_path, "A\tx\t\t\t'Beauty', 'Makeup'\t\t\n")
    assert ds.report.repaired["item_without_metadata"] == 3
    assert ds.items["D"].title == ""


def test_recbole_missing_columns_names_them(tmp_path):
    (tmp_path / "meta.item").write_text("item_id:token\tbrand:token\nA\tAcme\n")
    (tmp_path / "seq.txt").write_text("1 1\n")
    (tmp_path / "maps.json").write_text(json.dumps({"id2user": {"1": "U"}, "id2item": {"1": "A"}}))
    with pytest.raises(MissingColumnsError, match="title"):
        load_amazon2014(tmp_path / "seq.txt", tmp_path / "maps.json", tmp_path / "meta.item")


def test_unisrec_sequences_are_rebuilt_past_the_history_window(tmp_path):
    folder = tmp_path / "Tiny"
    folder.mkdir()
    (folder / "Tiny.item2index").write_text("".join(f"ASIN{i}\t{i}\n" for i in range(6)))
    (folder / "Tiny.user2index").write_text("R0\t0\n")
    (folder / "Tiny.text").write_text(
        "item_id:token\ttext:token_seq\n"
        + "".join(f"ASIN{i}\tWidget {i}. Industrial & Scientific Fasteners Screws. Acme. \n" for i in range(6))
    )
    header = "user_id:token\titem_id_list:token_seq\titem_id:token\n"
    # Window 2: histories keep the last two items, in shuffled row order.
    (folder / "Tiny.train.inter").write_text(header + "0\t1 2\t3\n0\t0\t1\n0\t0 1\t2\n")
    (folder / "Tiny.valid.inter").write_text(header + "0\t2 3\t4\n")
    (folder / "Tiny.test.inter").write_text(header + "0\t3 4\t5\n")
    ds = load_unisrec(folder, root="Industrial & Scientific", domains=("Fasteners",), window=2)
    assert ds.sequences() == {"R0": [f"ASIN{i}" for i in range(6)]}
    assert ds.items["ASIN0"].title == "Widget 0" and ds.items["ASIN0"].brand == "Acme"
    assert ds.items["ASIN0"].domain == "Fasteners"


def test_movielens_demographics_and_bad_rows(tmp_path):
    flags = "|".join(["0"] * 6 + ["1"] + ["0"] * 12)
    (tmp_path / "u.item").write_text(f"1|Heat (1995)|01-Jan-1995||url|{flags}\n2|Broken|row\n")
    (tmp_path / "u.user").write_text("7|24|M|technician|85711\n")
    with gzip.open(tmp_path / "u.data.gz", "wt") as f:
        f.write("7\t1\t5\t100\nnot a row\n")
    ds = load_movielens100k(tmp_path)
    assert ds.items["1"].domain == "Crime"
    assert ds.user_attributes["7"] == {"age": 24, "gender": "male", "occupation": "technician", "zip": "85711"}
    assert ds.report.skipped == {"wrong_field_count": 1, "bad_rating_row": 1}


def test_pixrec_parses_item_strings_and_counts_bad_lines(tmp_path):
    line = {
        "user_history": ["Title: Vogue. Category: Magazines. Brand: Unknown. Price: 12.0. Image: "],
        "user_history_images": ["data/images/a/111.jpg"],
        "target_item": "Title: Wired. Category: Magazines. Brand: Conde. Price: Unknown. Image: ",
        "target_item_image": "data/images/a/222.jpg",
    }
    (tmp_path / "mags.jsonl").write_text(json.dumps(line) + "\n{broken json\n")
    ds = load_pixrec(tmp_path / "mags.jsonl")
    assert ds.sequences() == {"u0": ["111", "222"]}
    assert (ds.items["111"].brand, ds.items["111"].price) == (None, 12.0)
    assert ds.items["222"].brand == "Conde" and ds.items["222"].domain == "Magazines"
    assert ds.report.skipped == {"bad_json": 1}


def test_generic_tables_with_a_column_mapping(tmp_path):
    (tmp_path / "items.csv").write_text("sku,name,path\n1,Red pen,Office>Pens\n2,Stapler,Office>Desk,extra\n")
    (tmp_path / "events.jsonl").write_text('{"who": "a", "sku": 1, "ts": 2}\n{"who": "a", "sku": 2, "ts": 1}\n')
    mapping = ColumnMapping(user_id="who", item_id="sku", order="ts", title="name", categories="path")
    ds = load_tabular(tmp_path / "items.csv", tmp_path / "events.jsonl", mapping)
    assert ds.sequences() == {"a": ["2", "1"]}  # ordered by timestamp
    assert ds.items["1"].domain == "Pens"
    assert ds.report.repaired["extra_fields_ignored"] == 1


def test_generic_tables_raise_named_errors(tmp_path):
    (tmp_path / "items.csv").write_text("item_id,title\n1,a\n1,b\n")
    (tmp_path / "inter.csv").write_text("user_id,item_id,timestamp\nu,1,0\n")
    with pytest.raises(DuplicateIdError):
        load_tabular(tmp_path / "items.csv", tmp_path / "inter.csv")
    (tmp_path / "items.csv").write_text("item_id,title\n1,a\n")
    (tmp_path / "inter.csv").write_text("user_id,item_id,timestamp\nu,9,0\n")
    with pytest.raises(UnknownItemError, match="'9'"):
        load_tabular(tmp_path / "items.csv", tmp_path / "inter.csv")
    (tmp_path / "inter.csv").write_text("user,item_id\nu,1\n")
    with pytest.raises(MissingColumnsError, match="ColumnMapping"):
        load_tabular(tmp_path / "items.csv", tmp_path / "inter.csv")


def test_load_dataset_by_folder_path_and_unknown_name(tmp_path):
    (tmp_path / "items.csv").write_text("item_id,title\n1,a\n")
    (tmp_path / "interactions.csv").write_text("user_id,item_id,timestamp\nu,1,0\n")
    assert load_dataset(tmp_path, cache=False).sequences() == {"u": ["1"]}
    with pytest.raises(UnknownNameError, match="beauty"):
        load_dataset("no-such-dataset")


def test_missing_data_dir_says_how_to_set_it(tmp_path, monkeypatch):
    monkeypatch.setenv(DATA_ENV, str(tmp_path / "absent"))
    with pytest.raises(DataNotFoundError, match=DATA_ENV):
        data_dir()


def test_amazon2023_reviews_join_metadata_and_count_orphans(tmp_path):
    meta = {"parent_asin": "P1", "title": "Serum", "store": "Glow", "categories": ["Beauty", "Skin Care"],
            "price": "$12.50", "main_category": "All Beauty", "description": ["Light", "serum"]}  # fmt: skip
    (tmp_path / "meta.jsonl").write_text(json.dumps(meta) + "\n")
    reviews = [{"user_id": "U", "parent_asin": "P1", "timestamp": 5, "rating": 4.0},
               {"user_id": "U", "parent_asin": "P9", "timestamp": 6, "rating": 1.0}]  # fmt: skip
    (tmp_path / "reviews.jsonl").write_text("".join(json.dumps(r) + "\n" for r in reviews))
    ds = load_amazon2023(tmp_path / "reviews.jsonl", tmp_path / "meta.jsonl", domain_level=1)
    item = ds.items["P1"]
    assert (item.brand, item.price, item.domain, item.description) == ("Glow", 12.5, "Skin Care", "Light serum")
    assert ds.interactions[0].label == 4.0
    assert ds.report.skipped == {"review_of_item_without_metadata": 1}


def test_jsonl_lines_that_are_json_but_not_records_are_skipped_and_counted(tmp_path):
    from coldstart_peft.data.schema import LoadReport
    from coldstart_peft.data.tabular import read_table

    (tmp_path / "rows.jsonl").write_text('{"a": 1}\n0\n[1, 2]\n{"a": 2}\n')
    report = LoadReport()
    assert read_table(tmp_path / "rows.jsonl", report) == [{"a": 1}, {"a": 2}]
    assert report.skipped == {"not_an_object": 2}
