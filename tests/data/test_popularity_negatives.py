"""Popularity-sampled negatives: drawn in proportion to training-user counts, recorded in the split's config."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from coldstart_peft.data.cold_start import cold_domain_split, cold_item_split, cold_user_split
from coldstart_peft.data.splits import sample_negatives
from coldstart_peft.demo import demo_dataset
from coldstart_peft.errors import SplitError


@pytest.fixture(scope="module")
def shop():
    return demo_dataset(n_items=300, n_users=400)


def _draws_and_weights(split):
    sequences = split.dataset.sequences()
    counts = Counter(i for u in split.train_users for i in sequences[u])
    drawn = Counter(c for r in split.valid + split.test for c in r.candidates if c != r.target)
    pool = sorted(split.dataset.items)
    return np.array([drawn[i] for i in pool], float), np.array([counts.get(i, 0) for i in pool], float)


def test_popularity_negatives_are_drawn_in_proportion_to_training_counts(shop):
    popular = _draws_and_weights(cold_user_split(shop, n_negatives=20, negative_sampling="popularity"))
    uniform = _draws_and_weights(cold_user_split(shop, n_negatives=20))
    top = np.argsort(-popular[1])[: len(popular[1]) // 10]  # the most bought tenth of the catalog

    def top_share(draws):
        return draws[top].sum() / draws.sum()

    weight_share = popular[1][top].sum() / popular[1].sum()
    # Uniform draws put about a tenth of the negatives on the top tenth; popularity draws about
    # its share of the training interactions (a little less: no item twice in one case).
    assert top_share(uniform[0]) < 0.13 < weight_share - 0.05 < top_share(popular[0]) < weight_share + 0.02
    assert np.corrcoef(*popular)[0, 1] > 0.7 > 0.3 > abs(np.corrcoef(*uniform)[0, 1])
    assert popular[0][popular[1] == 0].sum() == 0, "an item no training user bought is never a popularity negative"


def test_the_option_is_recorded_so_fingerprints_differ_and_uniform_splits_keep_theirs(shop):
    uniform = cold_user_split(shop, max_test_users=20)
    popular = cold_user_split(shop, max_test_users=20, negative_sampling="popularity")
    assert "negative_sampling" not in uniform.config and popular.config["negative_sampling"] == "popularity"
    assert uniform.fingerprint() != popular.fingerprint()
    assert uniform.partition_fingerprint() == popular.partition_fingerprint()  # same users train
    assert [r.target for r in uniform.test] == [r.target for r in popular.test]
    for builder in (cold_item_split, cold_domain_split):
        split = builder(shop, max_test_users=20, negative_sampling="popularity")
        pool = set(split.candidate_pool())
        assert split.config["negative_sampling"] == "popularity"
        assert all(set(r.candidates) <= pool for r in split.test)


def test_an_unknown_sampling_is_refused_by_name(shop):
    with pytest.raises(SplitError, match="uniform, popularity"):
        cold_user_split(shop, negative_sampling="hard")


def test_weighted_sampling_excludes_and_falls_back_to_unweighted_items_only_when_it_must():
    pool = [f"I{j}" for j in range(10)]
    weights = np.array([5, 0, 1, 0, 3, 0, 0, 0, 2, 0], float)
    rng = np.random.default_rng(0)
    for _ in range(50):
        drawn = sample_negatives(rng, pool, {"I0"}, 3, weights)
        assert len(set(drawn)) == 3 and set(drawn) == {"I2", "I4", "I8"}  # the only weighted items left
    drawn = sample_negatives(rng, pool, {"I0"}, 5, weights)
    assert len(set(drawn)) == 5 and {"I2", "I4", "I8"} < set(drawn) and "I0" not in drawn


def test_drawing_no_negatives_returns_none_and_leaves_the_random_stream_alone():
    pool = [f"I{j}" for j in range(10)]
    rng, twin = np.random.default_rng(3), np.random.default_rng(3)
    assert sample_negatives(rng, pool, {"I0"}, 0) == [] and sample_negatives(rng, pool, set(), 0, np.ones(10)) == []
    assert rng.integers(0, 1 << 30) == twin.integers(0, 1 << 30)  # a later draw is what it would have been
