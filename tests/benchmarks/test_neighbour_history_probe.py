"""The neighbour-history probe (benchmarks/probes/neighbour_history.py): what it appends, and that it runs end to end."""

from __future__ import annotations

import json

import pytest
from _scripts import load_benchmark, run_probe

from coldstart_peft import TrainGroup
from coldstart_peft.priors import PriorTables, id_key

probe = load_benchmark("probes/neighbour_history.py")


def test_neighbours_are_ranked_by_count_and_leave_out_the_context_and_the_groups_positive():
    groups = [TrainGroup("u", ["b"], [1.0], item_ids=["b"], context_ids=["a"])] * 3
    groups += [TrainGroup("u", ["c"], [1.0], item_ids=["c"], context_ids=["a"])]
    groups += [TrainGroup("u", ["a"], [1.0], item_ids=["a"], context_ids=["c"])]
    tables = PriorTables.fit(groups, None, "words")
    key = {k: i for i, k in enumerate(tables.keys.tolist())}
    b, c = key[id_key("b")], key[id_key("c")]
    assert probe.top_neighbours(tables, [["a"]], [None], 2) == [[b, c]], "b is bought next to a three times, c twice"
    assert probe.top_neighbours(tables, [["a"]], ["b"], 2) == [[c]], "a group's own positive is never listed"
    assert probe.top_neighbours(tables, [["a", "c"]], [None], 5) == [[b]], "context items are not their own neighbours"


@pytest.mark.slow
def test_the_probe_runs_its_arms_and_writes_its_report(tmp_path):
    run_probe("neighbour_history.py", "--split", "cold-user", "--seconds", "3", "--neighbours", "0", "--neighbours", "2", "--calibration-users", "40", "--out", str(tmp_path))
    report = json.loads((tmp_path / "neighbour_history.json").read_text())
    assert [arm["neighbours"] for arm in report["arms"]] == [0, 2] and all(arm["steps"] > 0 for arm in report["arms"])
    assert "| 2 |" in (tmp_path / "neighbour_history.md").read_text()
