"""Ranking and pointwise metrics against hand-worked examples, ties included."""

import math

import numpy as np
import pytest

from coldstart_peft.evaluation import (
    log_loss,
    metrics_from_scores,
    pointwise_auc,
    pointwise_metrics,
    ranking_metrics,
    segment_report,
)
from coldstart_peft.examples import RankingCase


def test_positive_ranked_first_scores_perfectly():
    m = ranking_metrics([[3.0, 1.0, 2.0]], ks=(1, 10))
    assert m["hr@1"][0] == m["ndcg@10"][0] == m["mrr"][0] == m["auc"][0] == 1.0


def test_positive_ranked_third_of_three():
    m = ranking_metrics([[1.0, 3.0, 2.0]], ks=(2, 10))
    assert m["hr@2"][0] == 0.0
    assert m["mrr"][0] == pytest.approx(1 / 3)
    assert m["ndcg@10"][0] == pytest.approx(1 / math.log2(4))  # rank 3 -> 1/log2(1+3) = 0.5
    assert m["auc"][0] == 0.0


def test_all_tied_is_the_expectation_over_random_tie_breaking():
    m = ranking_metrics([[1.0, 1.0, 1.0, 1.0]], ks=(1, 2))
    assert m["hr@1"][0] == pytest.approx(0.25)
    assert m["hr@2"][0] == pytest.approx(0.5)
    assert m["ndcg@2"][0] == pytest.approx((1 + 1 / math.log2(3)) / 4)
    assert m["mrr"][0] == pytest.approx((1 + 1 / 2 + 1 / 3 + 1 / 4) / 4)  # 25/48
    assert m["auc"][0] == pytest.approx(0.5)


def test_partial_tie_averages_only_over_the_tied_ranks():
    # One candidate beats the positive, one ties it, one is below: rank 2 or 3.
    m = ranking_metrics([[2.0, 3.0, 2.0, 1.0]], ks=(2,))
    assert m["mrr"][0] == pytest.approx((1 / 2 + 1 / 3) / 2)
    assert m["hr@2"][0] == pytest.approx(0.5)
    assert m["auc"][0] == pytest.approx((1 + 0.5) / 3)


def test_constant_scorer_gets_exactly_chance_with_100_candidates():
    m = ranking_metrics(np.zeros((5, 100)), ks=(10,))
    assert np.allclose(m["hr@10"], 0.10)
    assert np.allclose(m["auc"], 0.5)


def test_pointwise_auc_counts_ties_half_and_matches_hand_count():
    # Pairs (pos, neg): (.9,.2) win, (.9,.5) win, (.5,.2) win, (.5,.5) tie -> 3.5 / 4.
    assert pointwise_auc([0.9, 0.2, 0.5, 0.5], [1, 0, 1, 0]) == pytest.approx(0.875)
    assert math.isnan(pointwise_auc([0.1, 0.2], [1, 1]))


def test_log_loss_by_hand_and_from_logits():
    assert log_loss([0.8, 0.3], [1, 0]) == pytest.approx(-(math.log(0.8) + math.log(0.7)) / 2)
    out = pointwise_metrics([0.0, 0.0], [1, 0], from_logits=True)
    assert out["log_loss"] == pytest.approx(math.log(2))
    assert out["auc"] == pytest.approx(0.5) and out["n"] == 2


def test_segment_report_groups_by_segment_and_domain():
    cases = [
        RankingCase("u", ["a", "b"], target=0, domain="X", segment="cold-user"),
        RankingCase("u", ["a", "b"], target=1, domain="Y", segment="cold-user"),
    ]
    scores = [np.array([1.0, 0.0]), np.array([1.0, 0.0])]
    report = segment_report(scores, cases, ks=(1,))
    assert report["overall"]["hr@1"]["mean"] == pytest.approx(0.5)
    assert report["domain=X"]["hr@1"]["mean"] == 1.0
    assert report["domain=Y"]["hr@1"]["mean"] == 0.0
    assert report["segment=cold-user"]["n"]["mean"] == 2
    assert metrics_from_scores(scores, cases, ks=(1,))["mrr"].tolist() == [1.0, 0.5]
