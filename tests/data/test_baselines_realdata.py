"""Beauty cold-user baselines reproduce the reference numbers (reads ../shared/data).

Reference (issue 4): K=3, 1 positive + 99 uniform negatives, 1,000 test users: popularity
NDCG@10 ≈ 0.22, TF-IDF ≈ 0.30, hybrid ≈ 0.39 (λ ≈ 0.05). Zero-shot MiniLM (≈ 0.25; 0.241
measured) takes minutes on CPU, so it is measured in the report, not here.
"""

import pytest

from coldstart_peft.data import cold_user_split, load_dataset
from coldstart_peft.data.registry import data_dir
from coldstart_peft.errors import DataNotFoundError
from coldstart_peft.evaluation import evaluate_baseline, make_baseline

pytestmark = [pytest.mark.realdata, pytest.mark.slow]

REFERENCE = {"popularity": 0.22, "tfidf": 0.30, "hybrid": 0.39}


@pytest.fixture(scope="module")
def beauty_split():
    try:
        data_dir()
    except DataNotFoundError as error:
        pytest.skip(str(error))
    return cold_user_split(load_dataset("beauty"), k=3, n_negatives=99, seed=0, max_test_users=1000)


@pytest.mark.parametrize("method", sorted(REFERENCE))
def test_beauty_cold_user_baseline_matches_reference(beauty_split, method):
    cases = beauty_split.ranking_cases("test")
    assert len(cases) == 1000 and all(len(c.candidate_texts) == 100 for c in cases)
    baseline = make_baseline(method).fit(beauty_split)
    ndcg = evaluate_baseline(baseline, cases)["overall"]["ndcg@10"]
    assert ndcg["mean"] == pytest.approx(REFERENCE[method], abs=0.02)
    assert ndcg["low"] < ndcg["mean"] < ndcg["high"]
    if method == "hybrid":
        assert baseline.lam == pytest.approx(0.05, abs=0.03)
