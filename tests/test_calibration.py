"""Refitting prior weights on validation cases: the weights move towards what ranks the cases, the model stays."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from coldstart_peft import ConfigError, RankingCase, TrainGroup, build_scorer, create_host
from coldstart_peft.calibration import calibrate_priors
from coldstart_peft.evaluation.ranking import metrics_from_scores, score_cases

HOST = create_host(load_entrypoints=False)
ITEMS = ["red lipstick", "blue soap", "green brush", "pink cream", "black comb"]


def test_calibration_learns_that_popularity_ranks_the_cases(tiny_base):
    scorer = build_scorer("bi-encoder", tiny_base, {"max_length": 16, "popularity_prior": True}, host=HOST)
    scorer.precision = "fp32"
    # "blue soap" was the positive of 30 training groups, every other item of one.
    scorer.fit_prior([TrainGroup("likes blue", ["blue soap"], [1.0])] * 30 + [TrainGroup("u", [t], [1.0]) for t in ITEMS])
    with torch.no_grad():
        scorer.prior_weight.fill_(-1.0)  # training left it pointing the wrong way
    cases = [RankingCase(f"likes {c}", ITEMS, target=1) for c in ("red", "green", "pink", "black")]
    before = metrics_from_scores(score_cases(scorer.score, cases), cases, ks=(1,))["mrr"].mean()
    with torch.no_grad():
        scorer.prior_weight.zero_()
    model_only = score_cases(scorer.score, cases)
    with torch.no_grad():
        scorer.prior_weight.fill_(-1.0)

    fitted = calibrate_priors(scorer, cases)

    assert fitted["prior_weight"] == [scorer.prior_weight.item()] and scorer.prior_weight.item() > 0
    after = metrics_from_scores(score_cases(scorer.score, cases), cases, ks=(1,))["mrr"].mean()
    assert after == 1.0 > before
    with torch.no_grad():
        scorer.prior_weight.zero_()
    assert all(np.allclose(a, b) for a, b in zip(score_cases(scorer.score, cases), model_only)), "the model is untouched"


def test_calibration_needs_cases_and_ignores_scorers_without_priors(tiny_base):
    plain = build_scorer("bi-encoder", tiny_base, {"max_length": 16}, host=HOST)
    assert calibrate_priors(plain, []) == {}
    with_prior = build_scorer("bi-encoder", tiny_base, {"max_length": 16, "popularity_prior": True}, host=HOST)
    with pytest.raises(ConfigError, match="validation cases"):
        calibrate_priors(with_prior, [])
