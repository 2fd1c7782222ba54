"""The no-language-model twin of the neighbour_text prior, on a hand-made shop."""

import numpy as np
import pytest

from coldstart_peft.data import ColdStartSplit, Dataset, Interaction, Item
from coldstart_peft.data.splits import CaseRecord
from coldstart_peft.evaluation import make_baseline
from coldstart_peft.examples import RankingCase

TITLES = {"s": "argan shampoo", "c": "argan conditioner", "l": "red lipstick", "m": "black mascara",
          "new": "argan conditioner travel size", "other": "black eyeliner pencil"}  # fmt: skip


@pytest.fixture
def split():
    items = {i: Item(i, title=t, categories=("Beauty", "Hair"), domain="Hair") for i, t in TITLES.items()}
    # Training users buy the conditioner right after the shampoo, and the lipstick after the mascara.
    log = [("t1", "s"), ("t1", "c"), ("t2", "s"), ("t2", "c"), ("t3", "m"), ("t3", "l"), ("v", "m"), ("v", "l"), ("x", "s"), ("x", "new")]
    dataset = Dataset("toy", items, [Interaction(u, i, float(n)) for n, (u, i) in enumerate(log)])
    valid = CaseRecord("v", ["m"], "l", ["c", "l", "new"], "cold-user", "Hair")
    test = CaseRecord("x", ["s"], "new", ["other", "new", "l"], "cold-item", "Hair")
    return ColdStartSplit("cold-item", dataset, {"k": 1}, ["t1", "t2", "t3"], ["v"], ["x"], valid=[valid], test=[test])


def test_a_never_bought_item_scores_by_the_words_of_what_the_context_is_bought_with(split):
    baseline = make_baseline("neighbour-text").fit(split)
    scores = baseline.score_case(split.ranking_cases()[0])
    # Every item shares the category's words; only the conditioner-like one shares the neighbour's title.
    assert scores[1] > 0.3 and scores[1] > 4 * max(scores[0], scores[2]), "the shampoo's buyers add a conditioner"
    alone = RankingCase("u", ["x"], context_ids=["other"], candidate_ids=["new"])
    assert baseline.score_case(alone).tolist() == [0.0], "an item nobody bought has no neighbours"


def test_pool_scores_match_case_scores(split):
    baseline = make_baseline("hybrid+nbr").fit(split)
    cases = split.ranking_cases()
    pool = baseline.score_pool(cases, ["other", "new", "l"], [TITLES[i] for i in ("other", "new", "l")])
    np.testing.assert_allclose(pool[0], baseline.score_case(cases[0]), rtol=1e-6)


def test_hybrid_nbr_tunes_its_weight_on_validation_users_over_hybrid_cooc(split):
    fused = make_baseline("hybrid+nbr").fit(split)
    assert fused.nu == max(fused.neighbour_validation, key=fused.neighbour_validation.get)
    assert set(fused.neighbour_validation) == set(fused.nus) and 0.0 in fused.nus, "ν = 0 (hybrid+cooc itself) is a choice"
    reference = make_baseline("hybrid+cooc").fit(split)
    assert (fused.lam, fused.mu) == (reference.lam, reference.mu)
    case = split.ranking_cases()[0]
    text = fused.neighbour_text.score_case(case)
    assert fused.score_case(case) == pytest.approx(reference.score_case(case) + fused.nu * text)
