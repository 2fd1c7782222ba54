"""Co-bought hard negatives: what training users bought with the context, never what the user touched or a held-out item."""

import numpy as np

from coldstart_peft.data import Dataset, Interaction, Item, cold_item_split, cold_user_split, training_groups
from coldstart_peft.data.neighbours import cobought_neighbours

CLUBS = 4
PER_CLUB = 30


def club_dataset(n_users=160, seed=0) -> Dataset:
    """Each user buys within one club of items only, so items share buyers only inside their club."""
    items = {f"c{c}-{j}": Item(f"c{c}-{j}", title=f"item {c} {j}", categories=("Beauty", "All"), domain="All")
             for c in range(CLUBS) for j in range(PER_CLUB)}  # fmt: skip
    rng = np.random.default_rng(seed)
    interactions = []
    for u in range(n_users):
        club = u % CLUBS
        for t, j in enumerate(rng.choice(PER_CLUB, size=int(rng.integers(4, 8)), replace=False)):
            interactions.append(Interaction(f"u{u}", f"c{club}-{j}", float(t)))
    return Dataset("clubs", items, interactions)


def club(item_id: str) -> str:
    return item_id.split("-")[0]


def test_neighbours_rank_by_shared_buyers_and_never_list_the_item_itself():
    sequences = {"u": ["a", "b", "c"], "v": ["a", "b"], "w": ["a", "d"], "x": ["b", "a", "a"]}
    near = cobought_neighbours(sequences, n=3)
    assert near["a"] == ["b", "c", "d"]  # b shares 3 buyers; c and d one each, in sorted order
    assert near["d"] == ["a"] and all(i not in near[i] for i in near)
    assert cobought_neighbours(sequences, n=1)["b"] == ["a"]
    assert cobought_neighbours(sequences, allowed={"c", "d"})["a"] == ["c", "d"]  # b is not allowed


def test_cooccurrence_hard_negatives_come_from_what_the_context_was_bought_with():
    split = cold_user_split(club_dataset(), k=3)
    groups = training_groups(split, n_negatives=2, hard_negative_fraction=1.0, hard_negatives_from="cooccurrence", seed=1)
    # One group per (user, position), in the order of the training sequences: each group's user's items.
    touched = [set(seq) for seq in split.train_sequences().values() for _ in range(1, len(seq))]
    near = cobought_neighbours(split.train_sequences())
    assert len(groups) == len(touched)
    for g, items in zip(groups, touched):
        allowed = {i for c in g.context_ids for i in near[c]}
        assert set(g.item_ids[1:]) <= allowed and g.labels == [1.0, 0.0, 0.0]
        assert g.item_ids[0] in items and not set(g.item_ids[1:]) & items
    # Items share buyers only inside their club: every hard negative is from the user's club.
    assert all(club(i) == club(g.item_ids[0]) for g in groups for i in g.item_ids[1:])
    uniform = training_groups(split, n_negatives=2, seed=1)
    assert np.mean([club(i) == club(g.item_ids[0]) for g in uniform for i in g.item_ids[1:]]) < 0.5


def test_cooccurrence_hard_negatives_never_reach_excluded_items():
    split = cold_item_split(club_dataset(), seed=0)
    cold = set(split.excluded_items)
    groups = training_groups(split, n_negatives=2, hard_negative_fraction=1.0, hard_negatives_from="cooccurrence")
    assert cold and groups and all(not cold & set(g.item_ids) for g in groups)
