"""The library-backed metrics give the numbers of their definitions: AUC by pair counting, the bootstrap by percentiles."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from coldstart_peft.evaluation.metrics import bootstrap_ci, pointwise_auc


def _auc_by_pairs(scores, labels) -> float:
    positives = [s for s, y in zip(scores, labels) if y > 0.5]
    negatives = [s for s, y in zip(scores, labels) if y <= 0.5]
    wins = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p, n in itertools.product(positives, negatives))
    return wins / (len(positives) * len(negatives))


@pytest.mark.parametrize("seed", range(5))
def test_pointwise_auc_counts_pairs_with_ties_as_half(seed):
    rng = np.random.default_rng(seed)
    scores = np.round(rng.normal(size=60), 1)  # rounded: many ties
    labels = rng.random(60)  # soft labels: above 0.5 is a positive
    assert pointwise_auc(scores, labels) == pytest.approx(_auc_by_pairs(scores, labels), abs=1e-12)
    assert np.isnan(pointwise_auc(scores, np.ones(60)))


def test_bootstrap_interval_is_the_percentiles_of_resampled_means():
    values = np.random.default_rng(7).random(200)
    draws = np.random.default_rng(3).integers(0, 200, size=(500, 200))  # the draws of seed 3
    means = values[draws].mean(axis=1)
    low, high = bootstrap_ci(values, n_resamples=500, confidence=0.9, seed=3)
    assert low == pytest.approx(np.quantile(means, 0.05), abs=1e-12)
    assert high == pytest.approx(np.quantile(means, 0.95), abs=1e-12)
    assert bootstrap_ci([0.4]) == (0.4, 0.4) and all(np.isnan(bootstrap_ci([])))
