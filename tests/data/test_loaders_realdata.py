"""Each shared dataset loads with the counts its SOURCE.md states (reads ../shared/data)."""

from collections import Counter

import pytest

from coldstart_peft.data import load_dataset, load_pixrec
from coldstart_peft.data.registry import data_dir
from coldstart_peft.errors import DataNotFoundError


def _shared():
    try:
        return data_dir()
    except DataNotFoundError as error:
        pytest.skip(str(error))


pytestmark = pytest.mark.realdata


def test_beauty_counts_domains_and_quirks():
    _shared()
    ds = load_dataset("beauty")
    assert (len(ds.sequences()), len(ds.items), len(ds.interactions)) == (22_363, 12_101, 198_502)
    assert min(len(s) for s in ds.sequences().values()) >= 5
    assert ds.report.rows_read["Amazon_Beauty.item.gz"] == 12_102  # 12,101 records + 1 continuation line
    assert ds.report.repaired == {"multiline_field": 1, "embedded_tab": 2}
    assert not ds.report.skipped
    items = ds.items.values()
    assert sum(not i.title for i in items) == 7
    assert sum(not i.brand for i in items) == 2_098
    assert sum(i.price is None for i in items) == 585
    assert set(Counter(i.domain for i in items)) == {
        "Skin Care", "Hair Care", "Makeup", "Tools & Accessories", "Bath & Body", "Fragrance"
    }  # fmt: skip
    assert "\n" not in ds.items["B0001ZYL3Q"].title


def test_scientific_counts():
    _shared()
    ds = load_dataset("scientific")
    assert (len(ds.sequences()), len(ds.items), len(ds.interactions)) == (8_442, 4_385, 59_427)
    assert not ds.report.skipped
    assert ds.items["B0000223SI"].brand == "PORTER-CABLE"


def test_movielens_counts():
    _shared()
    ds = load_dataset("movielens")
    assert (len(ds.sequences()), len(ds.items), len(ds.interactions)) == (943, 1_682, 100_000)
    assert min(len(s) for s in ds.sequences().values()) >= 20
    assert len(ds.user_attributes) == 943


def test_pixrec_counts():
    root = _shared() / "amazon2023-pixrec" / "data"
    for name, users, interactions, images in (("Magazine_Subscriptions", 7_207, 18_550, 1_514),
                                              ("Subscription_Boxes", 766, 1_745, 303)):  # fmt: skip
        ds = load_pixrec(root / f"{name}.jsonl.gz")
        assert (len(ds.sequences()), len(ds.interactions), len(ds.items)) == (users, interactions, images)
