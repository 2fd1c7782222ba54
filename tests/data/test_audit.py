"""The target audit counts what co-occurrence and repeats give away, from training users only."""

from __future__ import annotations

import pytest

from coldstart_peft.data import Dataset, Interaction, Item, cold_user_split
from coldstart_peft.evaluation import target_audit


def _split(sequence_of):
    users = [f"u{i:03d}" for i in range(200)]
    items = {i: Item(i, title=f"item {i}") for i in "ABCDEFGHXYZ"}
    interactions = [Interaction(u, item, float(t)) for u in users for t, item in enumerate(sequence_of(u))]
    return cold_user_split(Dataset("audit", items, interactions), k=3, n_negatives=5, seed=0)


def test_bought_together_targets_are_counted_and_repeats_are_not_confused_with_them():
    split = _split(lambda u: "ABCD")
    audit = target_audit(split)
    assert audit["cases"] == len(split.test) > 0
    assert audit["cooccurs_in_window"] == audit["cooccurs_same_user"] == 1.0
    assert audit["target_in_context"] == 0.0 and audit["target_unseen_in_training"] == 0.0


def test_repeats_and_unseen_targets():
    # Even users repeat their first item; odd users end on an item only they bought.
    split = _split(lambda u: "ABCA" if int(u[1:]) % 2 == 0 else f"EFG{'XYZ'[int(u[1:]) % 3]}")
    audit = target_audit(split)
    test = split.test
    repeats = sum(r.target in r.context for r in test) / len(test)
    assert audit["target_in_context"] == pytest.approx(repeats) and 0 < repeats < 1
    train_items = {i for s in split.train_sequences().values() for i in s}
    assert audit["target_unseen_in_training"] == pytest.approx(sum(r.target not in train_items for r in test) / len(test))
    assert 0.0 <= audit["cooccurs_in_window"] <= audit["cooccurs_same_user"] <= 1.0


def test_cold_item_targets_are_all_unseen_in_training():
    from coldstart_peft.data import cold_item_split

    users = [f"u{i:03d}" for i in range(200)]
    items = {f"i{j:02d}": Item(f"i{j:02d}", title=f"item {j}") for j in range(40)}
    interactions = [Interaction(u, f"i{(n + t) % 40:02d}", float(t)) for n, u in enumerate(users) for t in range(6)]
    split = cold_item_split(Dataset("audit", items, interactions), k=3, n_negatives=5, seed=0, item_fraction=0.2)
    audit = target_audit(split)
    # Every target is a cold item, which training never shows; looking up co-occurrence first must not hide that.
    assert audit["cases"] > 0 and audit["target_unseen_in_training"] == 1.0
    assert audit["cooccurs_same_user"] == audit["cooccurs_in_window"] == 0.0
