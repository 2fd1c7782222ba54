"""The training recipe's settings resolve as documented, and each can be turned off from the command line."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

import coldstart_peft.recipes as recipes
from coldstart_peft.cli import build_parser
from coldstart_peft.cli.options import fit_settings_from_args
from coldstart_peft.errors import ConfigError
from coldstart_peft.host import default_host
from coldstart_peft.recipes import FitSettings, sampled_negatives
from coldstart_peft.priors import DEFAULT_FEATURES


def test_unset_negatives_come_from_the_scorer_and_a_set_count_wins():
    """The recipe asks the scorer class, so a scorer with in-batch negatives samples fewer."""
    for scorer in default_host().scorers.names():
        assert sampled_negatives(FitSettings(scorer=scorer)) == default_host().scorer(scorer).default_negatives
    assert sampled_negatives(FitSettings(n_negatives=3)) == 3
    assert FitSettings(priors=True).prior_features() == DEFAULT_FEATURES


def test_priors_resolve_to_features_in_order_and_unknown_ones_are_refused():
    assert FitSettings(priors=False).prior_features() == ()
    assert FitSettings(priors=["cooccurrence", "popularity"]).prior_features() == ("popularity", "cooccurrence")
    with pytest.raises(ConfigError, match="popularity, lexical, cooccurrence"):
        FitSettings(priors=["populraity"]).prior_features()


def _train_args(*flags):
    return build_parser().parse_args(["train", "--dataset", "demo", "--out", "runs/x", *flags])


def test_train_flags_map_onto_the_recipe():
    defaults = fit_settings_from_args(_train_args())
    assert defaults.priors and defaults.calibration_users == FitSettings.calibration_users
    assert defaults.n_negatives is None and defaults.scorer == "bi-encoder"
    off = fit_settings_from_args(_train_args("--no-priors", "--calibration-users", "0", "--train-negatives", "2"))
    assert off.prior_features() == ()
    some = fit_settings_from_args(_train_args("--priors", "lexical,popularity"))
    assert some.prior_features() == ("popularity", "lexical")
    assert off.calibration_users == 0 and off.n_negatives == 2
    assert defaults.lexical_units == "words" == FitSettings.lexical_units
    assert fit_settings_from_args(_train_args("--lexical-units", "wordpiece")).lexical_units == "wordpiece"
    with pytest.raises(SystemExit):
        _train_args("--lexical-units", "letters")
    assert fit_settings_from_args(_train_args("--new-item-share", "0.25")).new_item_share == 0.25
    assert defaults.new_item_share is None is FitSettings.new_item_share  # resolved from the split's validation users
    for bad in ("1.5", "-0.1", "half"):
        with pytest.raises(SystemExit):
            _train_args("--new-item-share", bad)


def test_calibration_is_refused_only_where_asked_for_and_impossible(tmp_path):
    from coldstart_peft.cli.train import run

    args = build_parser().parse_args(["train", "--pairs", str(tmp_path / "p.jsonl"), "--out", str(tmp_path / "o"),
                                      "--calibration-users", "50"])  # fmt: skip
    with pytest.raises(ConfigError, match="--calibration-users"):
        run(args)
    assert not (tmp_path / "o").exists()


class StopAtGroups(Exception):
    """Raised by the stand-in for training_groups: the test has what it needs, nothing trains."""


@pytest.fixture
def group_options(monkeypatch) -> dict:
    """The keyword options the recipe passes to ``training_groups``, filled in when it is called."""
    seen: dict = {}

    def groups(split, **options):
        seen.update(options)
        raise StopAtGroups

    monkeypatch.setattr(recipes, "training_groups", groups)
    return seen


def test_hard_negatives_reach_the_training_groups(group_options):
    seen = group_options
    with pytest.raises(StopAtGroups):
        recipes.fit_on_split(SimpleNamespace(kind="cold-user"), FitSettings(hard_negatives=0.75, hard_negatives_from="text",
                                                                            train_k=5))
    assert (seen["hard_negative_fraction"], seen["hard_negatives_from"], seen["k"]) == (0.75, "text", 5)


def test_the_per_domain_bank_builds_its_groups_from_the_same_settings(group_options, tmp_path):
    from coldstart_peft.bank import train_per_domain

    seen = group_options
    settings = FitSettings(hard_negatives=0.5, hard_negatives_from="text", train_k=4, n_negatives=3)
    with pytest.raises(StopAtGroups):
        train_per_domain(SimpleNamespace(kind="cold-user"), tmp_path / "bank", settings)
    assert (seen["hard_negative_fraction"], seen["hard_negatives_from"], seen["k"], seen["n_negatives"]) == (0.5, "text", 4, 3)
    assert seen["max_groups"] is None  # the bank samples its own global budget from every group


def test_max_positions_trains_on_each_users_first_positions_while_the_priors_count_every_one(tiny_base, monkeypatch):
    from coldstart_peft import create_host
    from coldstart_peft.data import load_dataset, make_split
    from coldstart_peft.priors import Priors
    from coldstart_peft.training import TrainConfig

    split = make_split(load_dataset("demo"), "cold-user", k=3, n_negatives=19, seed=0)
    trained, fitted = [], []

    def train(scorer, method, groups, valid, config, accelerator=None):
        trained.extend(groups)
        raise StopAtGroups

    fit = Priors.fit
    monkeypatch.setattr(recipes, "train", train)
    monkeypatch.setattr(Priors, "fit", lambda self, groups: fitted.extend(groups) or fit(self, groups))
    config = TrainConfig(max_steps=1, batch_size=4, precision="fp32", progress=False, eval_every=10_000)
    settings = FitSettings(base_model=tiny_base, calibration_users=0, valid_users=4, max_positions=2)
    with pytest.raises(StopAtGroups):
        recipes.fit_on_split(split, settings, config, host=create_host(load_entrypoints=False))
    lengths = [len(seq) for seq in split.train_sequences().values()]
    # Each user's first two positions: a context of one item, then of two.
    assert len(trained) == sum(min(2, n - 1) for n in lengths)
    assert sorted({len(g.context_ids) for g in trained}) == [1, 2]
    assert len(fitted) == sum(n - 1 for n in lengths) > len(trained)


def test_a_max_positions_under_one_is_refused_before_any_work(group_options):
    with pytest.raises(ConfigError, match="at least 1"):
        recipes.fit_on_split(SimpleNamespace(kind="cold-user"), FitSettings(max_positions=0))
    assert group_options == {}  # refused before any group was built


def test_the_per_domain_bank_refuses_max_positions_before_any_work(tmp_path):
    from coldstart_peft.bank import train_per_domain

    with pytest.raises(ConfigError, match="every position"):
        train_per_domain(SimpleNamespace(kind="cold-user"), tmp_path / "bank", FitSettings(max_positions=3))
    assert not (tmp_path / "bank").exists()
