"""Property-based checks: loaders and the text serializer never crash on arbitrary strings.

A loader either returns rows or raises one of the library's named errors; the serializer
always returns text within its word budget. ``max_examples`` is kept small so the suite stays fast.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from coldstart_peft.data import Item, TextConfig, TextSerializer, load_tabular, truncate
from coldstart_peft.errors import ColdStartError
from coldstart_peft.labeled_pairs import read_pairs

FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=300)
ANY_BYTES = st.binary(max_size=400)
CONFIG = TextConfig()


def _words(text: str) -> int:
    return len(text.split())


@FAST
@given(content=ANY_BYTES, suffix=st.sampled_from([".jsonl", ".csv", ".tsv"]))
def test_read_pairs_never_crashes_on_arbitrary_bytes(tmp_path, content, suffix):
    path = tmp_path / f"pairs{suffix}"
    path.write_bytes(content)
    try:
        pairs = read_pairs(path)
    except ColdStartError:
        return
    assert all(0.0 <= p.label <= 1.0 and p.user_text and p.item_text for p in pairs)


@FAST
@given(user=TEXT, item=TEXT, label=st.one_of(st.floats(allow_nan=True), st.text(max_size=5), st.none()))
def test_read_pairs_validates_arbitrary_fields(tmp_path, user, item, label):
    path = tmp_path / "pairs.jsonl"
    path.write_text(json.dumps({"user_text": user, "item_text": item, "label": label}) + "\n", encoding="utf-8")
    try:
        (pair,) = read_pairs(path)
    except ColdStartError:
        return
    assert 0.0 <= pair.label <= 1.0


@FAST
@given(items=ANY_BYTES, log=ANY_BYTES, suffix=st.sampled_from([".csv", ".jsonl"]))
def test_tabular_loader_never_crashes_on_arbitrary_bytes(tmp_path, items, log, suffix):
    (tmp_path / f"items{suffix}").write_bytes(b"item_id,title\n" + items if suffix == ".csv" else items)
    (tmp_path / "log.csv").write_bytes(b"user_id,item_id,timestamp\n" + log)
    try:
        dataset = load_tabular(tmp_path / f"items{suffix}", tmp_path / "log.csv")
    except ColdStartError:
        return
    assert all(e.item_id in dataset.items for e in dataset.interactions)


@FAST
@given(text=TEXT, budget=st.integers(min_value=0, max_value=40))
def test_truncate_respects_the_budget(text, budget):
    assert _words(truncate(text, budget)) <= budget


ITEM = st.builds(
    Item,
    item_id=TEXT, title=TEXT, brand=st.one_of(st.none(), TEXT),
    categories=st.lists(TEXT, max_size=5).map(tuple),
    price=st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True)),
    description=st.one_of(st.none(), TEXT),
)  # fmt: skip


@FAST
@given(item=ITEM)
def test_item_text_stays_within_its_budget(item):
    text = TextSerializer(CONFIG).item(item)
    budget = sum(CONFIG.budgets[field] + 1 for field in CONFIG.item_fields if field in CONFIG.budgets) + 2  # + labels
    assert text and _words(text) <= budget
    assert "$nan" not in text and "$inf" not in text and "$-" not in text


@FAST
@given(history=st.lists(ITEM, max_size=8), query=st.one_of(st.none(), TEXT),
       attributes=st.one_of(st.none(), st.dictionaries(st.sampled_from(["age", "gender", "occupation"]), TEXT)))  # fmt: skip
def test_user_text_stays_within_its_budget(history, query, attributes):
    text = TextSerializer(CONFIG).user(history, query=query, attributes=attributes)
    budgets = CONFIG.budgets
    budget = CONFIG.max_history * (budgets["history_title"] + 1) + 2 + budgets["query"] + 1 + budgets["demographics"] + 1
    assert text and _words(text) <= budget


@pytest.mark.parametrize("title", ["", " ", "\x00", "\u200b" * 3])
def test_blank_items_still_get_some_text(title):
    assert TextSerializer(CONFIG).item(Item(" ", title=title)).strip()


def test_a_negative_zero_price_reads_as_zero():
    # Found by the property test above: -0.0 passes a `>= 0` check and formatted as "$-0.00".
    assert "Price: $0.00" in TextSerializer(CONFIG).item(Item("1", title="Soap", price=-0.0))
