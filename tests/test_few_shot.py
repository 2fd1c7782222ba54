"""A handful of labeled pairs trains every scorer: the step plan, the pointwise loss, cross-validated AUC."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest

from coldstart_peft import TrainConfig, TrainGroup
from coldstart_peft.cli import main
from coldstart_peft.few_shot import cross_validated_auc, folds_of, is_pointwise, plan_steps_for_pairs, pointwise_scorer_config
from coldstart_peft.labeled_pairs import LabeledPair, write_pairs

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning")
COLOURS = ["red", "blue", "green", "black", "white", "pink", "gold", "grey"]


def _liked_or_not(n: int, seed: int = 0) -> list[TrainGroup]:
    """TALLRec's shape: one pair per user, liked when the item's colour is the user's."""
    rng = random.Random(seed)
    groups = []
    for n in range(n):
        colour, other = rng.sample(COLOURS, 2)
        liked = rng.random() < 0.5
        groups.append(TrainGroup(f"user {n} likes {colour} cream ; clicked {colour} soap", [f"{colour if liked else other} brush"],
                                 [1.0 if liked else 0.0]))  # fmt: skip
    return groups


def test_the_plan_takes_about_a_hundred_steps_on_a_small_file():
    config = TrainConfig()
    small = plan_steps_for_pairs(config, 16)
    assert (small.batch_size, small.epochs) == (4, 25)
    assert (plan_steps_for_pairs(config, 256).batch_size, plan_steps_for_pairs(config, 256).epochs) == (32, 13)
    assert plan_steps_for_pairs(config, 10_000) == config  # big enough for 100 steps in one epoch
    assert plan_steps_for_pairs(config, 16, batch_size_given=True, epochs_given=True) == config
    assert plan_steps_for_pairs(TrainConfig(max_steps=10), 16).epochs == 3  # enough epochs to reach max_steps


def test_pointwise_files_switch_scorers_with_a_loss_to_bce():
    assert is_pointwise(_liked_or_not(8)) and not is_pointwise([TrainGroup("u", ["a", "b"], [1.0, 0.0])])
    assert pointwise_scorer_config("bi-encoder", None)["loss"] == "bce"
    assert pointwise_scorer_config("generative", {"max_length": 64}) == {"max_length": 64, "loss": "bce"}
    assert pointwise_scorer_config("bi-encoder", {"loss": "infonce"}) == {"loss": "infonce"}  # the user's choice stays


def test_folds_keep_a_users_pairs_together_and_cross_validation_scores_out_of_fold():
    pairs = [LabeledPair(f"user {i % 10}", f"item {i}", float(i % 2)) for i in range(40)]
    parts = folds_of(pairs, 5, seed=0)
    assert sorted(i for part in parts for i in part) == list(range(40))
    assert all(len({pairs[i].user_text for i in part}) == 2 for part in parts)
    seen = []

    class Oracle:  # scores the label, but only of pairs it was not trained on
        def __init__(self, groups):
            self.trained = {(g.user_text, t) for g in groups for t in g.item_texts}
            seen.append(len(self.trained))

        def score(self, users, items):
            assert not any((u, i) in self.trained for u, i in zip(users, items))
            return np.array([float(i.split()[1]) % 2 for i in items])

    report = cross_validated_auc(Oracle, pairs, folds=5)
    assert report["auc"] == 1.0 and report["folds"] == 5 and seen == [32] * 5
    assert report["auc_low"] <= report["auc"] <= report["auc_high"]


def test_train_on_16_pointwise_pairs_plans_about_a_hundred_steps(tmp_path, tiny_base, capsys):
    """The issue's failing command: the default scorer on 16 pairs, some users with no positive."""
    pairs = write_pairs(tmp_path / "train_16.jsonl", _liked_or_not(16))
    out = tmp_path / "adapter"
    code = main(["train", "--pairs", str(pairs), "--out", str(out), "--base-model", tiny_base, "--no-priors",
                 "--no-progress", "--cv-folds", "0"])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    facts = json.loads((out / "coldstart.json").read_text())["extra"]
    assert (facts["plan"]["batch_size"], facts["plan"]["epochs"], facts["plan"]["steps"]) == (4, 25, 100)
    assert facts["plan"]["scorer_config"]["loss"] == "bce" and "cross_validation" not in facts


@pytest.mark.parametrize("scorer", ["bi-encoder", "cross-encoder", "generative"])
def test_every_scorer_trains_on_pointwise_pairs_and_reports_a_cross_validated_auc(tmp_path, tiny_base, scorer, capsys):
    pairs = write_pairs(tmp_path / "train_16.jsonl", _liked_or_not(16))
    out = tmp_path / "adapter"
    extra = ["--scorer-config", "yes=gold", "--scorer-config", "no=grey"] if scorer == "generative" else []
    code = main(["train", "--pairs", str(pairs), "--out", str(out), "--base-model", tiny_base, "--scorer", scorer,
                 "--no-priors", "--no-progress", "--method-config", "r=4", "--max-steps", "5", "--cv-folds", "2", *extra])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    printed = capsys.readouterr().out
    assert "by 2-fold cross-validation" in printed and "95% CI" in printed
    facts = json.loads((out / "coldstart.json").read_text())["extra"]
    assert facts["plan"]["steps"] == 5 and facts["plan"]["scorer_config"]["loss"] == "bce"
    assert 0.0 <= facts["cross_validation"]["auc_low"] <= facts["cross_validation"]["auc_high"] <= 1.0


def test_tagged_history_puts_a_verdict_before_every_item():
    from coldstart_peft.prompts import tagged_history

    text = tagged_history(["Heat (1995)", "Fargo (1996)"], ["Twister (1996)"])
    assert text == 'liked "Heat (1995)". liked "Fargo (1996)". disliked "Twister (1996)".'
    # The share liked is what the tokens say, whatever the titles: one verdict word per item.
    words = tagged_history(["a", "b", "c"], ["d"], like="+", dislike="-").split()
    assert [w for w in words if w in "+-"] == ["+", "+", "+", "-"]
    assert tagged_history([], []) == ""
