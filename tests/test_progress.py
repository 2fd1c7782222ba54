"""Progress and the plan line: long phases show a bar with a total, validation stays out of the training rate."""

from __future__ import annotations

import io
import logging

import pytest
from tqdm import tqdm

from coldstart_peft import progress
from coldstart_peft.data import cold_user_split
from coldstart_peft.data.pairs import training_groups
from coldstart_peft.data.registry import load_dataset
from coldstart_peft.progress import paused, phase, tracked
from coldstart_peft.recipes import FitSettings, fit_on_split, plan_line
from coldstart_peft.training import TrainConfig


@pytest.fixture(scope="module")
def split():
    return cold_user_split(load_dataset("demo"), k=1, n_negatives=5, max_test_users=10)


def test_a_phase_shows_its_loop_as_a_bar_with_the_total(split, capsys):
    users = len(split.train_sequences())
    training_groups(split, n_negatives=1, max_groups=10)
    assert "training groups" not in capsys.readouterr().err  # outside a phase the library is silent
    with phase("building training groups"):
        training_groups(split, n_negatives=1, max_groups=10)
    err = capsys.readouterr().err
    assert "training groups:" in err and f"/{users}" in err and "user/s" in err
    assert list(tracked([1, 2], "x")) == [1, 2]


def test_paused_leaves_the_block_out_of_the_bar_rate(monkeypatch):
    bar = tqdm(total=10, file=io.StringIO())
    bar.update(5)
    started, printed = bar.start_t, bar.last_print_t
    clock = iter([1000.0, 1042.5])
    monkeypatch.setattr(progress.time, "time", lambda: next(clock))
    with paused(bar):
        pass
    assert bar.start_t == started + 42.5 and bar.last_print_t == printed + 42.5
    with paused(tqdm(total=3, disable=True)):  # --no-progress: nothing to shift
        pass


def test_plan_line_says_each_budget():
    assert plan_line(3000, 8000, 100, 500) == (
        "training on 8,000 groups from 3,000 users; validating on 100 users; calibrating on 500 users"
    )
    assert plan_line(24, 24, 0, 0, capped=True) == "training on 24 groups (max_groups) from 24 users; no validation; no calibration"


def test_the_plan_is_logged_before_training_with_what_the_run_will_use(split, tiny_base, caplog):
    settings = FitSettings(scorer="cross-encoder", scorer_config={"max_length": 32}, base_model=tiny_base, n_negatives=1,
                           max_groups=12, valid_users=4, valid_candidates=3, calibration_users=6)  # fmt: skip
    config = TrainConfig(max_steps=1, batch_size=4, precision="fp32", progress=False)
    with caplog.at_level(logging.INFO, logger="coldstart_peft"):
        _, result = fit_on_split(split, settings, config)
    messages = [r.getMessage() for r in caplog.records]
    users = len(split.train_sequences())
    assert f"training on 12 groups (max_groups) from {users:,} users; validating on 4 users; calibrating on 6 users" in messages
    assert result.calibration is not None and result.steps == 1
