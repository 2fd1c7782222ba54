"""The attribute-affinity probe (benchmarks/probes/attribute_affinity.py): its features, and that it runs end to end."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
from _scripts import load_benchmark, run_probe

from coldstart_peft.data.schema import Item
from coldstart_peft.examples import RankingCase

probe = load_benchmark("probes/attribute_affinity.py")


def _split(items: list[Item], sequences: dict[str, list[str]]):
    dataset = SimpleNamespace(items={item.item_id: item for item in items})
    return SimpleNamespace(dataset=dataset, train_sequences=lambda: sequences)


def _item(item_id: str, brand: str | None, leaf: str) -> Item:
    return Item(item_id=item_id, title=item_id, brand=brand, categories=("Beauty", leaf), price=None, description=None,
                domain=leaf, attributes={})  # fmt: skip


def test_brand_lift_favours_the_brands_training_users_bought_together_and_ignores_missing_brands():
    items = [_item("a1", "A", "Hair"), _item("a2", "A", "Hair"), _item("b1", "B", "Skin"), _item("c1", "C", "Skin"),
             _item("n1", None, "Skin"), _item("b-new", "B", "Skin"), _item("c-new", "C", "Hair")]  # fmt: skip
    # Brand A is bought with B by two users and with C by none; C's only buyer bought nothing else.
    split = _split(items, {"u1": ["a1", "b1"], "u2": ["a2", "b1"], "u3": ["c1"], "u4": ["n1", "a1"]})
    affinity = probe.AttributeAffinity(split)
    case = RankingCase("u", ["b", "c", "n"], 0, candidate_ids=["b-new", "c-new", "n1"], context_ids=["a1", "c1"])
    f = affinity.features(case)
    assert f["brand_lift"][0] > 0 and f["brand_lift"][1] == 0, "B was bought beside A; C never beside A or C"
    assert f["brand_lift"][2] == 0 and f["same_brand"][2] == 0, "an item without a brand has no brand affinity"
    assert f["same_brand"].tolist() == [0.0, 0.5, 0.0], "one of the two context items is of brand C"
    assert f["same_leaf"].tolist() == [0.5, 0.5, 0.5], "a1 is Hair and c1 is Skin"
    assert f["leaf_lift"][0] > 0, "Hair items were bought beside Skin items"


@pytest.mark.slow
def test_the_probe_scores_every_base_and_writes_its_report(tmp_path):
    run_probe("attribute_affinity.py", "--split", "cold-user", "--seconds", "3", "--calibration-users", "40", "--out", str(tmp_path))
    report = json.loads((tmp_path / "attribute_affinity.json").read_text())
    bases = {row["base"] for row in report["rows"]}
    assert bases == {"hybrid+nbr", "tfidf", "lora", None} and report["bases"]["lora"]["steps"] > 0
    assert {row["feature"] for row in report["rows"] if row["base"] == "lora"} == {None, *probe.FEATURES}
    assert all(0.0 <= row["ndcg@10"]["mean"] <= 1.0 for row in report["rows"])
    assert "| lora | brand_lift |" in (tmp_path / "attribute_affinity.md").read_text()
