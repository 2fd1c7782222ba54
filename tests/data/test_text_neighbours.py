"""Text-hard negatives: each positive's nearest items by TF-IDF, never the item itself or one the user touched."""

import numpy as np
import pytest

from coldstart_peft.data import Dataset, Interaction, Item, cold_item_split, cold_user_split, training_groups
from coldstart_peft.data.neighbours import text_neighbours
from coldstart_peft.errors import SplitError

FAMILIES = ("matte lipstick", "argan shampoo", "vitamin serum", "nail polish", "hair dryer", "rose perfume")


def family_dataset(n_users=150, per_family=60, seed=0) -> Dataset:
    """Titles share their family's two words and one word of their own, so neighbours stay in the family."""
    items = {
        f"{f}-{j}": Item(f"{f}-{j}", title=f"{name} tone{f}x{j}", categories=("Beauty", "All"), domain="All")
        for f, name in enumerate(FAMILIES)
        for j in range(per_family)
    }
    ids = sorted(items)
    rng = np.random.default_rng(seed)
    interactions = [
        Interaction(f"u{u}", ids[j], float(t))
        for u in range(n_users)
        for t, j in enumerate(rng.choice(len(ids), size=int(rng.integers(3, 8)), replace=False))
    ]
    return Dataset("families", items, interactions)


def family(item_id: str) -> str:
    return item_id.split("-")[0]


def test_neighbours_are_the_most_similar_texts_and_never_the_item_itself():
    texts = {"a": "red matte lipstick", "b": "red matte lipstick long wear", "c": "matte lipstick", "d": "hair dryer"}
    near = text_neighbours(texts, n=2)
    assert near["a"] == ["b", "c"] or near["a"] == ["c", "b"]
    assert all(i not in near[i] and len(near[i]) == 2 for i in texts)
    assert near["d"][-1] != "d" and text_neighbours(texts, n=10)["a"][-1] == "d"  # capped at the catalog
    assert text_neighbours({"only": "x"}) == {"only": []}


def test_text_hard_negatives_come_from_the_positive_neighbours_and_skip_what_the_user_touched():
    dataset = family_dataset()
    split = cold_user_split(dataset, k=3)
    groups = training_groups(split, n_negatives=4, hard_negative_fraction=0.5, hard_negatives_from="text", seed=3)
    # 60 items a family and 50 neighbours: the family's two words rank its own items first.
    assert all(family(g.item_ids[i]) == family(g.item_ids[0]) for g in groups for i in (1, 2))
    uniform = training_groups(split, n_negatives=4, seed=3)
    assert np.mean([family(g.item_ids[i]) == family(g.item_ids[0]) for g in uniform for i in (1, 2)]) < 0.5
    touched = {(tuple(seq[max(0, t - 3) : t]), seq[t]): set(seq) for seq in split.train_sequences().values()
               for t in range(1, len(seq))}  # fmt: skip
    for g in groups:
        assert g.labels == [1.0, 0.0, 0.0, 0.0, 0.0]
        assert not set(g.item_ids[1:]) & touched[tuple(g.context_ids), g.item_ids[0]]


def test_text_hard_negatives_never_reach_excluded_items():
    dataset = family_dataset()
    split = cold_item_split(dataset, seed=0)
    cold = set(split.excluded_items)
    groups = training_groups(split, n_negatives=2, hard_negative_fraction=1.0, hard_negatives_from="text")
    assert groups and all(not cold & set(g.item_ids) for g in groups)


def test_an_unknown_hard_negative_source_is_refused_by_name():
    with pytest.raises(SplitError, match="domain, text"):
        training_groups(cold_user_split(family_dataset()), hard_negatives_from="brand")
