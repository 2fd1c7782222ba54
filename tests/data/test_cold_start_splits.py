"""Cold-start splits on a synthetic dataset: disjoint users, no leakage, exact reproducibility."""

import numpy as np
import pytest

from coldstart_peft.data import (
    ColdStartSplit,
    Dataset,
    Interaction,
    Item,
    cold_domain_split,
    cold_item_split,
    cold_user_split,
    make_split,
    training_groups,
)
from coldstart_peft.errors import SplitError, UnknownNameError


def make_dataset(n_users=200, n_items=300, seed=0) -> Dataset:
    rng = np.random.default_rng(seed)
    domains = ("Makeup", "Hair Care", "Fragrance")
    items = {
        f"i{j}": Item(f"i{j}", title=f"item {j} title", categories=("Beauty", domains[j % 3]), domain=domains[j % 3])
        for j in range(n_items)
    }
    interactions = []
    for u in range(n_users):
        for t, j in enumerate(rng.choice(n_items, size=int(rng.integers(2, 12)), replace=False)):
            interactions.append(Interaction(f"u{u}", f"i{j}", float(t)))
    return Dataset("synthetic", items, interactions)


@pytest.fixture(scope="module")
def dataset():
    return make_dataset()


@pytest.mark.parametrize("k", [0, 1, 3, 5])
def test_cold_user_protocol(dataset, k):
    split = cold_user_split(dataset, k=k, seed=1)
    train, valid, test = map(set, (split.train_users, split.valid_users, split.test_users))
    assert not (train & valid or train & test or valid & test)
    assert len(train | valid | test) == 200 and len(train) == 160
    sequences = dataset.sequences()
    for case in split.ranking_cases("test"):
        seq = sequences[case.user_id]
        assert case.user_id in test
        assert case.context_ids == seq[:k]
        assert case.candidate_ids[case.target] == seq[k]
        assert len(case.candidate_ids) == 100 == len(set(case.candidate_ids))
        assert not set(case.candidate_ids) - {seq[k]} & set(seq)  # negatives never interacted with
    assert len(split.test) == sum(len(sequences[u]) > k for u in test)


def test_no_test_user_reaches_training(dataset):
    split = cold_user_split(dataset, k=3)
    held = set(split.test_users) | set(split.valid_users)
    assert not held & set(split.train_sequences())
    groups = training_groups(split, n_negatives=3)
    train_texts = {g.user_text for g in groups}
    # Histories are random, so a held-out user's context text never coincides with a train one.
    assert not train_texts & {c.user_text for c in split.ranking_cases("test") if c.context_ids}
    assert all(g.labels == [1.0, 0.0, 0.0, 0.0] and g.item_ids[0] for g in groups)


def test_seeds_reproduce_exactly_and_differ_across_seeds(dataset, tmp_path):
    a, b = cold_user_split(dataset, seed=3), cold_user_split(dataset, seed=3)
    assert a.fingerprint() == b.fingerprint() and a.test == b.test
    assert cold_user_split(dataset, seed=4).fingerprint() != a.fingerprint()
    ga, gb = training_groups(a, seed=7), training_groups(b, seed=7)
    assert [g.item_ids for g in ga] == [g.item_ids for g in gb]
    path = tmp_path / "split.json"
    assert a.save(path) == a.fingerprint()
    loaded = ColdStartSplit.load(path, dataset)
    assert loaded.fingerprint() == a.fingerprint() and loaded.test == a.test
    with pytest.raises(SplitError, match="rebuild the split"):
        ColdStartSplit.load(path, make_dataset(seed=9))


def test_capping_test_users_keeps_the_same_first_cases(dataset):
    full, capped = cold_user_split(dataset, seed=2), cold_user_split(dataset, seed=2, max_test_users=5)
    assert capped.test == full.test[:5]


def test_full_catalog_ranks_every_unseen_item(dataset):
    case = cold_user_split(dataset, k=1, n_negatives=None).test[0]
    seen = set(dataset.sequences()[case.user_id])
    assert len(case.candidates) == 300 - len(seen) + 1


def test_cold_items_never_appear_in_training_text(dataset):
    split = cold_item_split(dataset, k=2, seed=0)
    cold = set(split.excluded_items)
    assert len(cold) == 30
    assert all(not cold & set(seq) for seq in split.train_sequences().values())
    groups = training_groups(split, n_negatives=5, hard_negative_fraction=0.4)
    cold_titles = {dataset.items[i].title for i in cold}
    texts = " || ".join(g.user_text + " || " + " || ".join(g.item_texts) for g in groups)
    assert not any(f"{title};" in texts or f"{title} |" in texts or texts.endswith(title) for title in cold_titles)
    assert all(not cold & set(g.item_ids) for g in groups)
    for record in split.test:
        assert record.target in cold and set(record.candidates) <= cold
        assert not cold & set(record.context)


def test_hard_negatives_come_from_the_positive_domain(dataset):
    groups = training_groups(cold_user_split(dataset), n_negatives=4, hard_negative_fraction=0.5)
    for g in groups[:50]:
        domains = [dataset.items[i].domain for i in g.item_ids]
        assert domains[1:3] == [domains[0]] * 2


@pytest.mark.parametrize("shots", [0, 16, 64])
def test_cold_domain_removes_the_domain_and_adds_few_shot(dataset, shots):
    split = cold_domain_split(dataset, domain="Fragrance", few_shot=shots)
    held = set(split.excluded_items)
    assert all(dataset.items[i].domain == "Fragrance" for i in held)
    assert all(not held & set(seq) for seq in split.train_sequences().values())
    assert len(split.few_shot) == shots
    groups = training_groups(split, n_negatives=2)
    assert sum(g.domain == "Fragrance" for g in groups) == shots
    assert all(r.domain == "Fragrance" and set(r.candidates) <= held for r in split.test)
    assert not set(split.test_users) & set(split.train_sequences())


def test_split_errors_are_named(dataset):
    with pytest.raises(UnknownNameError, match="cold-user"):
        make_split(dataset, "warm")
    with pytest.raises(UnknownNameError, match="Makeup"):
        cold_domain_split(dataset, domain="Garden")
    with pytest.raises(SplitError):
        cold_user_split(dataset, k=-1)


def test_a_negative_training_context_length_is_refused(dataset):
    with pytest.raises(SplitError, match="k must be >= 0"):
        training_groups(cold_user_split(dataset), k=-1)
