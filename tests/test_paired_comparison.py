"""Paired comparisons of two rankers on the same users: per-case ranks and the paired bootstrap."""

from __future__ import annotations

import numpy as np
import pytest

from coldstart_peft.evaluation import (
    bootstrap_ci,
    metrics_from_case_ranks,
    metrics_from_ranks,
    metrics_from_scores,
    paired_bootstrap,
    ranking_metrics,
    ranks_from_scores,
)
from coldstart_peft.examples import RankingCase


def test_ranks_give_the_per_case_metrics_of_each_case_scored_alone_with_ties_and_uneven_candidate_counts():
    rng = np.random.default_rng(0)
    cases, scores = [], []
    for n in rng.integers(2, 40, size=60):
        cases.append(RankingCase("u", ["i"] * int(n), target=int(rng.integers(0, n))))
        scores.append(np.round(rng.normal(size=n), 1))  # rounded: many ties with the target
    better, tied = ranks_from_scores(scores, cases)
    assert tied.sum() > 0, "the check needs ties"
    # Each case alone, through the matrix path: the definition the per-case helpers must match.
    alone = [ranking_metrics(row[None, :], [case.target], ks=(1, 10)) for case, row in zip(cases, scores)]
    expected = {name: np.array([m[name][0] for m in alone]) for name in alone[0]}
    from_ranks = metrics_from_ranks(better, tied, ks=(1, 10))
    assert set(from_ranks) == {"hr@1", "hr@10", "ndcg@1", "ndcg@10", "mrr"}
    with_auc = metrics_from_case_ranks(better, tied, cases, ks=(1, 10))
    assert set(with_auc) == set(expected) == set(from_ranks) | {"auc"}
    for per_row in (from_ranks, with_auc, metrics_from_scores(scores, cases, ks=(1, 10))):
        for name, values in per_row.items():
            np.testing.assert_allclose(values, expected[name], rtol=0, atol=1e-12, err_msg=name)


def test_the_paired_interval_resamples_users_jointly():
    rng = np.random.default_rng(1)
    reference = rng.random(300)
    values = np.clip(reference + rng.normal(0.01, 0.02, size=300), 0, 1)
    result = paired_bootstrap(values, reference, n_resamples=500, confidence=0.9, seed=3)
    draws = np.random.default_rng(3).integers(0, 300, size=(500, 300))  # scipy's draws for seed 3
    differences = values[draws].mean(axis=1) - reference[draws].mean(axis=1)
    ratios = values[draws].mean(axis=1) / reference[draws].mean(axis=1)
    assert result["n"] == 300
    assert result["difference"]["mean"] == pytest.approx(values.mean() - reference.mean(), abs=1e-12)
    assert result["difference"]["low"] == pytest.approx(np.quantile(differences, 0.05), abs=1e-12)
    assert result["difference"]["high"] == pytest.approx(np.quantile(differences, 0.95), abs=1e-12)
    assert result["ratio"]["mean"] == pytest.approx(values.mean() / reference.mean(), abs=1e-12)
    assert result["ratio"]["low"] == pytest.approx(np.quantile(ratios, 0.05), abs=1e-12)
    # What pairing is for: the rows' own intervals overlap, the difference's interval excludes 0.
    own, theirs = bootstrap_ci(values, seed=3), bootstrap_ci(reference, seed=3)
    assert own[0] < theirs[1] and result["difference"]["low"] > 0


def test_a_reference_of_zero_has_no_ratio_and_unpaired_rows_are_refused():
    result = paired_bootstrap([0.5, 0.2, 0.0], [0.0, 0.0, 0.0])
    assert result["difference"]["mean"] == pytest.approx(0.7 / 3) and np.isnan(result["ratio"]["mean"])
    with pytest.raises(ValueError, match="one length"):
        paired_bootstrap([0.1, 0.2], [0.1, 0.2, 0.3])
