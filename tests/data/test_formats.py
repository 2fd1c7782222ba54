"""Every dataset format round-trips: a tiny dataset written in it loads back with its items, events and fields."""

from __future__ import annotations

import csv
import gzip
import json

import pytest

from coldstart_peft.data import ColumnMapping, load_dataset, load_recbole, load_tabular, read_rows
from coldstart_peft.labeled_pairs import read_pairs

pa = pytest.importorskip("pyarrow")
import pyarrow.parquet as pq  # noqa: E402

ITEMS = [
    {"item_id": "i1", "title": "Red lipstick", "brand": "Acme", "categories": "Beauty>Makeup>Lips", "price": 3.5},
    {"item_id": "i2", "title": "Blue soap", "brand": "Org", "categories": "Beauty>Bath", "price": 2.0},
    {"item_id": "i3", "title": "Hair oil", "brand": "Glow", "categories": "Beauty>Hair Care", "price": 9.25},
]
EVENTS = [  # u1's log is written newest first: the timestamps, not the file order, must decide
    {"user_id": "u1", "item_id": "i2", "timestamp": 20, "rating": 4.0},
    {"user_id": "u1", "item_id": "i1", "timestamp": 10, "rating": 5.0},
    {"user_id": "u2", "item_id": "i3", "timestamp": 5, "rating": 2.0},
    {"user_id": "u2", "item_id": "i2", "timestamp": 7, "rating": 1.0},
]
SEQUENCES = {"u1": ["i1", "i2"], "u2": ["i3", "i2"]}


def _write(path, rows, columns=None):
    """Write ``rows`` in the format ``path``'s suffix names."""
    columns = columns or list(rows[0])
    name = path.name.removesuffix(".gz")
    if name.endswith(".parquet"):
        pq.write_table(pa.Table.from_pylist(rows), path)
        return path
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "wt", newline="", encoding="utf-8") as stream:
        if name.endswith(".jsonl"):
            stream.writelines(json.dumps(r) + "\n" for r in rows)
        else:
            writer = csv.writer(stream, delimiter="\t" if name.endswith(".tsv") else ",")
            writer.writerow(columns)
            writer.writerows([r[c] for c in columns] for r in rows)
    return path


def _assert_round_trip(dataset):
    assert dataset.sequences() == SEQUENCES
    for row in ITEMS:
        item = dataset.items[row["item_id"]]
        assert (item.title, item.brand, item.price) == (row["title"], row["brand"], row["price"])
        assert item.categories == tuple(row["categories"].split(">"))
        assert item.domain == row["categories"].split(">")[1]
    labels = {(e.user_id, e.item_id): e.label for e in dataset.interactions}
    assert labels == {(r["user_id"], r["item_id"]): r["rating"] for r in EVENTS}


@pytest.mark.parametrize("items_name, events_name", [
    ("items.csv", "interactions.csv"), ("items.tsv", "interactions.tsv.gz"), ("items.jsonl", "interactions.jsonl"),
    ("items.parquet", "interactions.parquet"), ("items.parquet", "interactions.csv"),
])  # fmt: skip
def test_tables_round_trip_in_every_format(tmp_path, items_name, events_name):
    _write(tmp_path / items_name, ITEMS)
    _write(tmp_path / events_name, EVENTS)
    _assert_round_trip(load_tabular(tmp_path / items_name, tmp_path / events_name))
    _assert_round_trip(load_dataset(tmp_path, cache=False))  # the folder: usual names, any format


def test_tables_under_other_names_and_columns_through_a_mapping(tmp_path):
    renamed = {"item_id": "sku", "title": "product_name", "brand": "maker", "categories": "path", "price": "cost"}
    items = [{renamed[k]: v for k, v in row.items()} for row in ITEMS]
    events = [{"who": r["user_id"], "sku": r["item_id"], "when": r["timestamp"], "stars": r["rating"]} for r in EVENTS]
    mapping = ColumnMapping(item_id="sku", title="product_name", brand="maker", categories="path", price="cost",
                            user_id="who", order="when", label="stars")  # fmt: skip
    dataset = load_tabular(_write(tmp_path / "catalogue.parquet", items), _write(tmp_path / "clicks.jsonl", events), mapping)
    _assert_round_trip(dataset)
    assert dataset.name == "clicks"


@pytest.mark.parametrize("items_stem, events_stem", [("products", "events"), ("catalog", "ratings"), ("item", "log")])
def test_a_folder_finds_the_usual_alternative_names(tmp_path, items_stem, events_stem):
    _write(tmp_path / f"{items_stem}.csv", ITEMS)
    _write(tmp_path / f"{events_stem}.jsonl", EVENTS)
    _assert_round_trip(load_dataset(tmp_path, cache=False))


def _write_recbole(folder, stem="shop", gz=False, user=True):
    folder.mkdir(parents=True, exist_ok=True)
    suffix = ".gz" if gz else ""
    opener = gzip.open if gz else open
    with opener(folder / f"{stem}.inter{suffix}", "wt", encoding="utf-8") as f:
        f.write("user_id:token\titem_id:token\trating:float\ttimestamp:float\n")
        f.writelines(f"{r['user_id']}\t{r['item_id']}\t{r['rating']}\t{r['timestamp']}\n" for r in EVENTS)
    with opener(folder / f"{stem}.item{suffix}", "wt", encoding="utf-8") as f:
        f.write("item_id:token\ttitle:token_seq\tbrand:token\tcategories:token_seq\tprice:float\n")
        for r in ITEMS:
            path = ", ".join(repr(p) for p in r["categories"].split(">"))  # RecBole's Amazon style: 'Beauty', 'Bath'
            f.write(f"{r['item_id']}\t{r['title']}\t{r['brand']}\t{path}\t{r['price']}\n")
    if user:
        (folder / f"{stem}.user").write_text("user_id:token\tage:token\tgender:token\nu1\t24\tF\nu2\t31\tM\nu9\t50\tM\n")
    return folder


def test_recbole_atomic_folder_round_trips_with_user_features(tmp_path):
    folder = _write_recbole(tmp_path / "shop")
    dataset = load_dataset(folder, cache=False)
    _assert_round_trip(dataset)
    assert dataset.name == "shop"
    assert dataset.user_attributes == {"u1": {"age": "24", "gender": "F"}, "u2": {"age": "31", "gender": "M"}}
    assert dataset.report.skipped["user_without_interactions"] == 1  # u9 has features but no event


@pytest.mark.parametrize("given", ["shop.inter", "shop.item", "shop.inter.gz"])
def test_a_recbole_file_given_directly_reads_its_siblings(tmp_path, given):
    folder = _write_recbole(tmp_path / "data", gz=given.endswith(".gz"), user=False)
    _assert_round_trip(load_dataset(folder / given, cache=False))


def test_recbole_space_separated_token_seq_and_renamed_fields(tmp_path):
    (tmp_path / "ml.inter").write_text("user_id:token\titem_id:token\ttimestamp:float\n1\t10\t978300760\n1\t20\t978300700\n")
    (tmp_path / "ml.item").write_text("item_id:token\tmovie_title:token_seq\tgenre:token_seq\n10\tToy Story\tAnimation Comedy\n"
                                      "20\tJumanji\tAdventure Fantasy\n")  # fmt: skip
    dataset = load_recbole(tmp_path / "ml.inter", ColumnMapping(title="movie_title", categories="genre", domain_level=0))
    assert dataset.sequences() == {"1": ["20", "10"]}
    assert dataset.items["10"].title == "Toy Story"
    assert dataset.items["10"].categories == ("Animation", "Comedy") and dataset.items["10"].domain == "Animation"


def test_recbole_item_text_is_unescaped_like_the_amazon_crawl_needs(tmp_path):
    (tmp_path / "a.inter").write_text("user_id:token\titem_id:token\ttimestamp:float\nu\ti1\t1\n")
    (tmp_path / "a.item").write_text("item_id:token\ttitle:token_seq\tbrand:token\ni1\tHand Therapy &amp; Balm\tCrabtree &amp; Evelyn\n")
    item = load_recbole(tmp_path).items["i1"]
    assert (item.title, item.brand) == ("Hand Therapy & Balm", "Crabtree & Evelyn")


def test_recbole_keeps_events_of_items_the_item_file_lacks(tmp_path):
    folder = _write_recbole(tmp_path / "shop", user=False)
    with open(folder / "shop.inter", "a") as f:
        f.write("u2\tzz\t3.0\t9\n")
    with pytest.warns(UserWarning, match="1 interactions name items missing from shop.item"):
        dataset = load_dataset(folder, cache=False)
    assert dataset.sequences()["u2"] == ["i3", "i2", "zz"] and dataset.items["zz"].title == ""
    assert dataset.report.repaired["item_without_metadata"] == 1


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".jsonl", ".parquet"])
def test_labeled_pairs_read_through_the_same_reader_in_every_format(tmp_path, suffix):
    rows = [{"user_text": "likes red", "item_text": "red cream", "label": 1, "domain": "Skin Care"},
            {"user_text": "likes red", "item_text": "blue soap", "label": 0, "domain": "Skin Care"}]  # fmt: skip
    path = _write(tmp_path / f"pairs{suffix}", rows)
    pairs = read_pairs(path)
    assert [(p.user_text, p.item_text, p.label, p.domain) for p in pairs] == [
        ("likes red", "red cream", 1.0, "Skin Care"), ("likes red", "blue soap", 0.0, "Skin Care"),
    ]  # fmt: skip
    assert read_rows(path).columns == ["user_text", "item_text", "label", "domain"]
