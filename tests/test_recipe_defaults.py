"""The training recipe's defaults are the benchmark's winning settings, and each can be turned off."""

from __future__ import annotations

import pytest

from coldstart_peft.cli import build_parser
from coldstart_peft.cli.options import fit_settings_from_args
from coldstart_peft.errors import ConfigError
from coldstart_peft.recipes import FitSettings, sampled_negatives
from coldstart_peft.scorer import PRIOR_FLAGS


def test_default_recipe_is_a_bi_encoder_with_every_prior_and_calibration():
    settings = FitSettings()
    assert settings.scorer == "bi-encoder" and settings.calibration_users > 0
    assert settings.scorer_settings() == dict.fromkeys(PRIOR_FLAGS, True)
    # In-batch negatives come with the bi-encoder, so it samples fewer than the cross-encoder.
    assert sampled_negatives(settings) == 1
    assert sampled_negatives(FitSettings(scorer="cross-encoder")) == 7
    assert sampled_negatives(FitSettings(n_negatives=3)) == 3


def test_an_explicit_scorer_setting_wins_over_the_priors_switch():
    settings = FitSettings(priors=False, scorer_config={"lexical_prior": True, "max_length": 64})
    assert settings.scorer_settings() == {"popularity_prior": False, "lexical_prior": True,
                                          "cooccurrence_prior": False, "max_length": 64}  # fmt: skip


def _train_args(*flags):
    return build_parser().parse_args(["train", "--dataset", "demo", "--out", "runs/x", *flags])


def test_train_flags_map_onto_the_recipe():
    defaults = fit_settings_from_args(_train_args())
    assert defaults.priors and defaults.calibration_users == FitSettings.calibration_users
    assert defaults.n_negatives is None and defaults.scorer == "bi-encoder"
    off = fit_settings_from_args(_train_args("--no-priors", "--calibration-users", "0", "--train-negatives", "2"))
    assert off.scorer_settings() == dict.fromkeys(PRIOR_FLAGS, False)
    assert off.calibration_users == 0 and off.n_negatives == 2


def test_calibration_is_refused_only_where_asked_for_and_impossible(tmp_path):
    from coldstart_peft.cli.train import run

    args = build_parser().parse_args(["train", "--pairs", str(tmp_path / "p.jsonl"), "--out", str(tmp_path / "o"),
                                      "--calibration-users", "50"])  # fmt: skip
    with pytest.raises(ConfigError, match="--calibration-users"):
        run(args)
    assert not (tmp_path / "o").exists()
