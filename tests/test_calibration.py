"""Refitting prior weights on validation cases: the weights move towards what ranks the cases, the model stays."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from coldstart_peft import ConfigError, RankingCase, TrainGroup, build_scorer, create_host
from coldstart_peft.calibration import calibrate_priors
from coldstart_peft.evaluation.ranking import metrics_from_scores, score_cases
from coldstart_peft.priors import Priors

HOST = create_host(load_entrypoints=False)
ITEMS = ["red lipstick", "blue soap", "green brush", "pink cream", "black comb"]


def _popularity_scorer(tiny_base):
    scorer = build_scorer("bi-encoder", tiny_base, {"max_length": 16}, host=HOST)
    scorer.attach_priors(Priors(["popularity"]))
    scorer.precision = "fp32"
    return scorer


def test_calibration_learns_that_popularity_ranks_the_cases(tiny_base):
    scorer = _popularity_scorer(tiny_base)
    # "blue soap" was the positive of 30 training groups, every other item of one.
    scorer.priors.fit([TrainGroup("likes blue", ["blue soap"], [1.0], item_ids=["blue soap"])] * 30
                      + [TrainGroup("u", [t], [1.0], item_ids=[t]) for t in ITEMS])  # fmt: skip
    with torch.no_grad():
        scorer.priors.weight.fill_(-1.0)  # training left it pointing the wrong way
    cases = [RankingCase(f"likes {c}", ITEMS, target=1, candidate_ids=ITEMS) for c in ("red", "green", "pink", "black")]
    before = metrics_from_scores(score_cases(scorer.score, cases), cases, ks=(1,))["mrr"].mean()
    model_only = score_cases(scorer.score_texts, cases)

    fitted = calibrate_priors(scorer, cases)

    assert fitted == {"popularity": scorer.priors.weight.item()} and scorer.priors.weight.item() > 0
    after = metrics_from_scores(score_cases(scorer.score, cases), cases, ks=(1,))["mrr"].mean()
    assert after == 1.0 > before
    assert all(np.allclose(a, b) for a, b in zip(score_cases(scorer.score_texts, cases), model_only)), "the model is untouched"
    no_ids = [RankingCase(c.user_text, c.candidate_texts, c.target) for c in cases]
    assert all(np.allclose(a, b) for a, b in zip(score_cases(scorer.score, no_ids), model_only)), "no ids, no popularity"


def test_calibration_needs_cases_and_ignores_scorers_without_priors(tiny_base):
    plain = build_scorer("bi-encoder", tiny_base, {"max_length": 16}, host=HOST)
    assert calibrate_priors(plain, []) == {}
    with_prior = _popularity_scorer(tiny_base)
    with pytest.raises(ConfigError, match="validation cases"):
        calibrate_priors(with_prior, [])
