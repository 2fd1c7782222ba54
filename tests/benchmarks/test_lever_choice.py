"""The lever-choice script's arm specs: parsed into recipe settings, bad ones refused before training."""

from __future__ import annotations

import argparse

import numpy as np
import pytest

from _scripts import load_benchmark
from coldstart_peft.errors import ConfigError, UnknownNameError

levers = load_benchmark("lever_choice.py")


def test_an_arm_sets_each_lever_it_names_and_nothing_else():
    name, changes = levers.parse_arm("rich:history_extras=brand+category,hard_negatives=0.5,dropout=0,priors=off")
    settings, serializer = levers.arm_setup(changes, calibration_users=300)
    assert name == "rich"
    assert serializer.config.history_extras == ("brand", "category")
    assert (settings.hard_negatives, settings.method_config, settings.priors) == (0.5, {"dropout": 0.0}, False)
    assert settings.calibration_users == 300 and settings.n_negatives is None
    default, serializer = levers.arm_setup(levers.parse_arm("default")[1], calibration_users=500)
    assert default.hard_negatives == 0.0 and default.priors is True and serializer.config.history_extras == ()


@pytest.mark.parametrize("spec", ["x:colour=2", "x:dropout", ":dropout=0"])
def test_a_bad_arm_is_refused_with_the_keys_it_may_use(spec):
    with pytest.raises(ConfigError):
        levers.parse_arm(spec)


@pytest.mark.parametrize("changes", [{"priors": "yes"}, {"priors": "lexical+colour"}, {"history_extras": "brand+colour"}])
def test_a_bad_lever_value_is_refused_by_name(changes):
    with pytest.raises(ConfigError, match="priors=on|colour"):
        levers.arm_setup(changes, calibration_users=500)


def test_prior_features_and_the_new_item_share_are_levers():
    settings, _ = levers.arm_setup({"priors": "lexical+popularity", "new_item_share": "0.5"}, calibration_users=500)
    assert settings.prior_features() == ("popularity", "lexical") and settings.new_item_share == 0.5
    assert levers.arm_setup({"new_item_share": "auto"}, calibration_users=500)[0].new_item_share is None


def test_the_hard_negative_source_is_a_lever_and_a_bad_one_is_refused():
    settings, _ = levers.arm_setup({"hard_negatives": "1", "hard_from": "text", "train_k": "5"}, calibration_users=500)
    assert (settings.hard_negatives, settings.hard_negatives_from, settings.train_k) == (1.0, "text", 5)
    default = levers.arm_setup({}, calibration_users=500)[0]
    assert default.hard_negatives_from == "domain" and default.train_k is None
    with pytest.raises(ConfigError, match="domain, text"):
        levers.arm_setup({"hard_from": "brand"}, calibration_users=500)


def test_the_item_tower_is_a_lever_whose_memory_negatives_follow_the_priors():
    frozen, _ = levers.arm_setup({"item_tower": "frozen", "backbone_dropout": "0.1"}, calibration_users=500)
    # With priors on, memory negatives would be columns without prior features: the scorer refuses those.
    assert frozen.scorer_config == {"backbone_dropout": 0.1, "item_tower": "frozen", "memory_negatives": False}
    alone, _ = levers.arm_setup({"item_tower": "frozen", "priors": "off"}, calibration_users=500)
    assert alone.scorer_config == {"item_tower": "frozen", "memory_negatives": True}
    with pytest.raises(ConfigError, match="item_tower=shared"):
        levers.arm_setup({"item_tower": "twin"}, calibration_users=500)


def test_the_learning_rate_is_a_lever_and_a_bad_one_is_refused():
    assert levers.arm_train_config({"lr": "3e-3"}, seconds=150, seed=1).lr == 0.003
    default = levers.arm_train_config({}, seconds=150, seed=1)
    assert default.lr is None and default.time_budget_s == 150 and default.seed == 1
    with pytest.raises(ConfigError, match="positive learning rate"):
        levers.arm_train_config({"lr": "0"}, seconds=150, seed=1)


def test_the_batch_is_a_lever_and_a_bad_one_is_refused():
    assert levers.arm_train_config({}, seconds=150, seed=1).batch_size == 32
    assert levers.arm_train_config({"batch": "64"}, seconds=150, seed=1).batch_size == 64
    for bad in ("0", "big", "-8"):
        with pytest.raises(ConfigError, match="e.g. batch=64"):
            levers.arm_train_config({"batch": bad}, seconds=150, seed=1)


def test_the_temperature_is_a_scorer_lever_kept_beside_the_others():
    settings, _ = levers.arm_setup({"temperature": "0.02", "backbone_dropout": "0"}, calibration_users=500)
    assert settings.scorer_config == {"backbone_dropout": 0.0, "temperature": 0.02}
    for bad in ("0", "cold", "-1"):
        with pytest.raises(ConfigError, match="e.g. temperature=0.02"):
            levers.arm_setup({"temperature": bad}, calibration_users=500)


def test_the_method_its_target_layers_and_rank_are_levers():
    settings, _ = levers.arm_setup({"targets": "query+value+output.dense", "rank": "16", "dropout": "0"}, calibration_users=500)
    assert settings.method == "lora"
    assert settings.method_config == {"target_modules": ["query", "value", "output.dense"], "r": 16, "alpha": 32, "dropout": 0.0}
    full, _ = levers.arm_setup({"method": "full"}, calibration_users=500)
    assert full.method == "full" and full.method_config is None
    with pytest.raises(ConfigError, match="at least 1"):
        levers.arm_setup({"rank": "0"}, calibration_users=500)
    with pytest.raises(ConfigError, match="layer names"):
        levers.arm_setup({"targets": "+"}, calibration_users=500)
    with pytest.raises(ConfigError, match="whole rank"):
        levers.arm_setup({"rank": "1.5"}, calibration_users=500)
    # Checked against the method itself: full fine-tuning has no target layers, and a typo has no method.
    with pytest.raises(ConfigError, match="target_modules"):
        levers.arm_setup({"method": "full", "targets": "query"}, calibration_users=500)
    with pytest.raises(UnknownNameError, match="known methods"):
        levers.arm_setup({"method": "lroa"}, calibration_users=500)


def test_loraplus_is_a_lever_checked_by_the_method():
    settings, _ = levers.arm_setup({"loraplus": "16"}, calibration_users=500)
    assert settings.method_config == {"loraplus_lr_ratio": 16.0}
    with pytest.raises(ConfigError, match="e.g. loraplus=16"):
        levers.arm_setup({"loraplus": "fast"}, calibration_users=500)
    with pytest.raises(ConfigError, match="loraplus_lr_ratio must be positive"):
        levers.arm_setup({"loraplus": "0"}, calibration_users=500)
    with pytest.raises(ConfigError, match="loraplus_lr_ratio"):  # full fine-tuning has no B matrices
        levers.arm_setup({"method": "full", "loraplus": "16"}, calibration_users=500)


def test_the_training_positions_are_a_lever_and_a_bad_count_is_refused():
    assert levers.arm_setup({"positions": "3"}, calibration_users=500)[0].max_positions == 3
    assert levers.arm_setup({}, calibration_users=500)[0].max_positions is None
    with pytest.raises(ConfigError, match="first positions"):
        levers.arm_setup({"positions": "0"}, calibration_users=500)


def test_baselines_alone_are_scored_on_the_arms_users_and_tuned_on_the_calibration_users(tmp_path):
    import json

    out = tmp_path / "refs"
    levers.main(["--dataset", "demo", "--split", "cold-user", "--calibration-users", "10",
                 "--references", "tfidf,hybrid+nbr", "--out", str(out)])  # fmt: skip
    report = json.loads((out / "lever_choice.json").read_text())
    assert [arm["arm"] for arm in report["arms"]] == ["tfidf", "hybrid+nbr"] and report["winner"] is None
    assert all(arm["baseline"] and arm["held_out_users"] == report["arms"][0]["held_out_users"] for arm in report["arms"])
    assert "Winner" not in (out / "lever_choice.md").read_text()


@pytest.mark.parametrize("argv", [["--references", "tfidf,nope"], ["--no-references"]])
def test_unknown_baselines_or_nothing_to_score_are_refused_before_any_work(argv, tmp_path):
    with pytest.raises(SystemExit):
        levers.main(["--dataset", "demo", *argv, "--out", str(tmp_path / "x")])
    assert not (tmp_path / "x").exists()


def test_each_arm_after_the_first_is_paired_with_it_and_the_winner_says_whether_its_lead_is_sure():
    def arm(name, better):
        ndcg = float(np.mean([1 / np.log2(b + 2) if b < 10 else 0.0 for b in better]))
        interval = {"mean": ndcg, "low": ndcg - 0.1, "high": ndcg + 0.1}
        return {"arm": name, "changes": {}, "steps": 10, "train_pairs_per_s": 5.0, "held_out_users": len(better),
                "ranks": {"better": better, "tied": [0] * len(better)},
                "metrics": {"ndcg@10": interval, "hr@10": interval, "mrr": interval}}  # fmt: skip

    default = arm("default", [0, 1, 2, 3, 4, 5, 6, 7] * 5)
    always_better = arm("sharper", [0, 0, 1, 2, 3, 4, 5, 6] * 5)  # never worse, often better: a sure lead
    mixed = arm("mixed", [1, 0, 3, 2, 5, 4, 7, 6] * 5)  # trades places user by user
    reference = {"arm": "tfidf", "changes": {}, "baseline": True, "held_out_users": 40,
                 "metrics": default["metrics"]}  # fmt: skip
    arms = [default, always_better, mixed, reference]
    levers.pair_with_first(arms, seed=0)
    assert "against" not in default and "against" not in reference
    lead = always_better["against"]
    assert lead["arm"] == "default" and lead["difference"]["low"] > 0 and lead["n"] == 40
    assert mixed["against"]["difference"]["low"] < 0 < mixed["against"]["difference"]["high"]
    report = {"arms": arms, "winner": "sharper", "seconds": 10, "dataset": "demo", "split": "cold-user", "seed": 0,
              "precision": "fp32", "machine": {"cpu_model": "Some CPU", "cpu_capability": "AVX2"},
              "code": {"commit": "abc1234", "dirty": False}}  # fmt: skip
    table = levers.markdown(report)
    assert "| sharper | — | 10 | 5.0 |" in table and f"{lead['difference']['mean']:+.4f} [" in table
    assert "against default on the same users (95% paired interval, above 0)" in table
    assert "holding 0" in levers.winner_line(report | {"winner": "mixed"})
    assert levers.winner_line(report | {"winner": "default"}) == "Winner on validation: default."


@pytest.mark.slow
def test_two_arms_on_the_demo_keep_their_users_ranks_and_are_paired(tmp_path):
    import json

    from coldstart_peft.evaluation import metrics_from_ranks

    out = tmp_path / "arms"
    levers.main(["--dataset", "demo", "--split", "cold-user", "--seconds", "2", "--calibration-users", "20",
                 "--arm", "default", "--arm", "r4:rank=4", "--no-references", "--out", str(out)])  # fmt: skip
    report = json.loads((out / "lever_choice.json").read_text())
    default, r4 = report["arms"]
    for arm in (default, r4):
        per_user = metrics_from_ranks(arm["ranks"]["better"], arm["ranks"]["tied"], ks=(10,))["ndcg@10"]
        assert len(per_user) == arm["held_out_users"] and per_user.mean() == pytest.approx(arm["metrics"]["ndcg@10"]["mean"])
    difference = r4["metrics"]["ndcg@10"]["mean"] - default["metrics"]["ndcg@10"]["mean"]
    assert "against" not in default and r4["against"]["difference"]["mean"] == pytest.approx(difference)
    assert "against the first arm, paired" in (out / "lever_choice.md").read_text()


@pytest.mark.slow
def test_with_the_full_catalog_arms_and_references_are_ranked_over_the_pool_on_the_same_users(tmp_path):
    import json

    from coldstart_peft.evaluation import metrics_from_ranks

    out = tmp_path / "catalog"
    levers.main(["--dataset", "demo", "--split", "cold-user", "--seconds", "2", "--calibration-users", "20",
                 "--arm", "default", "--arm", "fast:lr=5e-3", "--references", "tfidf", "--full-catalog",
                 "--out", str(out)])  # fmt: skip
    report = json.loads((out / "lever_choice.json").read_text())
    default, fast, tfidf = report["arms"]
    assert report["full_catalog_pool"] > 100  # the whole catalog, not 1 + 99
    for arm in report["arms"]:
        per_user = metrics_from_ranks(arm["ranks_full"]["better"], arm["ranks_full"]["tied"], ks=(10,))["ndcg@10"]
        assert len(per_user) == arm["held_out_users"] == default["held_out_users"]
        assert per_user.mean() == pytest.approx(arm["metrics_full"]["ndcg@10"]["mean"])
    difference = fast["metrics_full"]["ndcg@10"]["mean"] - default["metrics_full"]["ndcg@10"]["mean"]
    assert fast["against_full"]["arm"] == "default" and fast["against_full"]["difference"]["mean"] == pytest.approx(difference)
    assert "against_full" not in default and "against_full" not in tfidf
    table = (out / "lever_choice.md").read_text()
    assert f"Over the full pool ({report['full_catalog_pool']:,} items" in table and "Best arm over the full pool:" in table


def test_without_the_full_catalog_option_no_pool_figures_are_written():
    report = {"arms": [{"arm": "tfidf", "changes": {}, "baseline": True, "held_out_users": 40,
                        "metrics": {m: {"mean": 0.3, "low": 0.2, "high": 0.4} for m in ("ndcg@10", "hr@10", "mrr")}}],
              "winner": None, "seconds": 10, "dataset": "demo", "split": "cold-user", "seed": 0, "precision": "fp32",
              "machine": {"cpu_model": "Some CPU", "cpu_capability": "AVX2"}, "code": {"commit": "abc1234", "dirty": False},
              "full_catalog_pool": None}  # fmt: skip
    assert "full pool" not in levers.markdown(report)


def test_arms_train_by_default_as_long_as_the_cpu_preset_trains_each_method():
    """A lever chosen at another length need not hold at the one the test tables run."""
    compare = load_benchmark("compare_methods.py")
    parser = argparse.ArgumentParser()
    levers.add_validation_options(parser)
    assert parser.parse_args([]).seconds == levers.PRESET_SECONDS == compare.PRESETS["cpu"]["seconds"]
