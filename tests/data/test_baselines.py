"""Baselines on tiny hand-made cases: each scores what it claims to."""

import numpy as np
import pytest

from coldstart_peft.data import ColdStartSplit, Dataset, Interaction, Item
from coldstart_peft.data.splits import CaseRecord
from coldstart_peft.errors import DataError, UnknownNameError
from coldstart_peft.evaluation import evaluate_baseline, make_baseline
from coldstart_peft.examples import RankingCase

TITLES = {"a": "red lipstick matte", "b": "red lipstick gloss", "c": "beard oil cedar", "d": "dry shampoo spray"}


@pytest.fixture
def split():
    items = {i: Item(i, title=t, categories=("Beauty", "Makeup"), domain="Makeup") for i, t in TITLES.items()}
    # Training users make d the most popular item and c the second.
    log = [("t1", "d"), ("t1", "c"), ("t2", "d"), ("t2", "c"), ("t3", "d"), ("x", "a"), ("x", "b"), ("v", "a"), ("v", "b")]
    dataset = Dataset("toy", items, [Interaction(u, i, float(n)) for n, (u, i) in enumerate(log)])
    record = CaseRecord("x", ["a"], "b", ["c", "b", "d"], "cold-user", "Makeup")
    valid = CaseRecord("v", ["a"], "b", ["c", "b", "d"], "cold-user", "Makeup")
    return ColdStartSplit("cold-user", dataset, {"k": 1}, ["t1", "t2", "t3"], ["v"], ["x"], valid=[valid], test=[record])


def test_popularity_counts_training_users_only(split):
    scores = make_baseline("popularity").fit(split).score_case(split.ranking_cases()[0])
    assert scores.tolist() == [2.0, 0.0, 3.0]  # b is only bought by held-out users


def test_tfidf_prefers_the_candidate_sharing_words_with_the_context(split):
    scores = make_baseline("tfidf").fit(split).score_case(split.ranking_cases()[0])
    assert int(np.argmax(scores)) == 1 and scores[0] == scores[2] == 0.0


def test_hybrid_tunes_lambda_on_validation_users(split):
    hybrid = make_baseline("hybrid").fit(split)
    assert hybrid.validation and hybrid.lam == max(hybrid.validation, key=hybrid.validation.get)
    report = evaluate_baseline(hybrid, split.ranking_cases())
    assert report["overall"]["mrr"]["mean"] == 1.0 and "domain=Makeup" in report


def test_cooccurrence_counts_items_training_users_bought_together(split):
    # Test user x clicked a. No training user bought a; t1 and t2 bought d then c.
    baseline = make_baseline("cooccurrence").fit(split)
    assert baseline.score_case(split.ranking_cases()[0]).tolist() == [0.0, 0.0, 0.0]
    case = RankingCase("u", ["c", "a", "d"], context_ids=["d"], candidate_ids=["c", "a", "d"])
    assert baseline.score_case(case).tolist() == pytest.approx([np.log1p(2), 0.0, 0.0])


def test_hybrid_cooc_tunes_both_weights_on_validation_users(split):
    fused = make_baseline("hybrid+cooc").fit(split)
    assert (fused.lam, fused.mu) == max(fused.validation, key=fused.validation.get)
    assert len(fused.validation) > len(make_baseline("hybrid").fit(split).validation)
    case = split.ranking_cases()[0]
    expected = fused.tfidf.score_case(case) + fused.lam * np.log1p([2.0, 0.0, 3.0])
    assert fused.score_case(case) == pytest.approx(expected)


@pytest.mark.slow
def test_zero_shot_embeds_with_the_default_backbone(split):
    baseline = make_baseline("zero-shot", batch_size=2).fit(split)
    scores = baseline.score_cases(split.ranking_cases())[0]
    assert scores.shape == (3,) and np.all(np.abs(scores) <= 1.0 + 1e-5)
    assert set(baseline.cache) == {"b", "c", "d"}


def test_baseline_errors_are_named(split):
    with pytest.raises(UnknownNameError, match="popularity"):
        make_baseline("random-forest")
    with pytest.raises(DataError, match="ranking_cases"):
        make_baseline("popularity").fit(split).score_case(RankingCase("u", ["x"]))
