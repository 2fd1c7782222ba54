"""benchmarks/lexical_choice.py on the demo world: each arm's weights come from one half and its score from the other."""

from __future__ import annotations

import json

import numpy as np
import pytest

from _scripts import load_benchmark
from coldstart_peft.errors import OverwriteRefusedError
from coldstart_peft.examples import RankingCase


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    script = load_benchmark("lexical_choice.py")
    out = tmp_path_factory.mktemp("lexical")
    return script, script.main(["--dataset", "demo", "--valid-users", "40", "--out", str(out)]), out


def test_every_arm_is_scored_across_halves_with_weights_from_the_grid(run):
    script, report, out = run
    assert set(report["arms"]) == {"wordpiece", "words", "baseline"} and report["valid_users"] == 40
    for arm in report["arms"].values():
        scores = [arm[k]["ndcg@10"] for k in ("first->second", "second->first")]
        assert all(0.0 <= s <= 1.0 for s in scores) and arm["mean"] == pytest.approx(sum(scores) / 2)
        for k in ("first->second", "second->first"):
            lam, mu = arm[k]["weights"]
            assert lam in script.POPULARITY and mu in script.COOCCURRENCE
    assert json.loads((out / "lexical_choice.json").read_text())["arms"] == json.loads(json.dumps(report["arms"]))
    assert report["code"]["commit"] and report["machine"]["cpu_capability"]


def test_the_weights_chosen_on_one_half_are_the_ones_that_rank_its_targets(run):
    script, _, _ = run
    cases = [RankingCase("u", ["target", "other"], 0)] * 4
    lexical = [np.array([0.0, 0.05])] * 4  # the text prefers the negative a little
    popularity = [np.array([1.0, 0.0])] * 4  # popularity prefers the target
    arm = script.cross_halves(lexical, popularity, [np.zeros(2)] * 4, cases)
    for way in ("first->second", "second->first"):
        assert arm[way]["weights"][0] > 0.05 and arm[way]["ndcg@10"] == pytest.approx(1.0)


def test_the_table_lists_the_best_mean_first(run):
    _, report, out = run
    table = (out / "lexical_choice.md").read_text().splitlines()
    rows = [line for line in table if line.startswith("| ") and not line.startswith("| lexical")]
    means = [float(line.split(" | ")[3]) for line in rows]
    assert means == sorted(means, reverse=True) and len(rows) == 3


def test_a_rerun_replaces_its_own_files_and_a_file_it_did_not_write_is_refused(run, tmp_path):
    script, _, out = run
    script.check_report_files(out, "lexical_choice")  # its own files from the first run: a rerun may replace them
    (tmp_path / "lexical_choice.md").write_text("my notes\n")
    with pytest.raises(OverwriteRefusedError):
        script.main(["--dataset", "demo", "--valid-users", "40", "--out", str(tmp_path)])
    assert (tmp_path / "lexical_choice.md").read_text() == "my notes\n"
    assert not (tmp_path / "lexical_choice.json").exists()
