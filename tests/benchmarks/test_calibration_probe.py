"""The calibration-protocol probe (benchmarks/probes/calibration_protocol.py) runs end to end on the demo shop."""

from __future__ import annotations

import json

import pytest
import torch
from _scripts import load_benchmark, run_probe

from coldstart_peft.assembly import build_scorer
from coldstart_peft.data import TextSerializer, cold_user_split
from coldstart_peft.data.pairs import training_groups
from coldstart_peft.demo import demo_dataset
from coldstart_peft.priors import Priors
from coldstart_peft.retrieval import ItemIndex
from coldstart_peft.retrieval.catalog_prior import CatalogPrior


@pytest.mark.slow
def test_the_probe_fits_the_weights_five_ways_and_scores_each_on_three_protocols(tmp_path):
    run_probe("calibration_protocol.py", "--seconds", "3", "--calibration-users", "40", "--out", str(tmp_path))
    report = json.loads((tmp_path / "calibration_protocol.json").read_text())
    arms = {(arm["model"], arm["calibration"]): arm for arm in report["arms"]}
    assert list(arms) == [("lora", "none"), ("lora", "uniform"), ("lora", "popularity"), ("lora", "both"), ("lora", "top"),
                          ("hybrid+cooc", "uniform"), ("hybrid+cooc", "popularity"), ("hybrid+cooc", "top")]  # fmt: skip
    assert report["steps"] > 0 and report["code"]["commit"] and report["dataset"] == "demo"
    for arm in report["arms"]:
        assert arm["held_out_users"] > 0
        assert set(arm["ndcg@10"]) == {"uniform", "popularity", "full catalog"}
        assert all(0.0 <= v["low"] <= v["mean"] <= v["high"] <= 1.0 for v in arm["ndcg@10"].values())
    # Each fit starts from the weights training left, so a fit on other cases lands elsewhere.
    fitted = [arms[("lora", how)]["weights"] for how in ("none", "uniform", "popularity")]
    assert fitted[0] != fitted[1] and fitted[1] != fitted[2]
    assert "| hybrid+cooc | popularity |" in (tmp_path / "calibration_protocol.md").read_text()


def test_top_cases_put_each_target_among_the_items_ranked_highest_for_its_user(tiny_base):
    probe = load_benchmark("probes/calibration_protocol.py")
    split = cold_user_split(demo_dataset(n_items=80, n_users=200), k=3, max_test_users=20)
    torch.manual_seed(0)
    scorer = build_scorer("bi-encoder", tiny_base, {"max_length": 48})
    scorer.precision = "fp32"
    scorer.attach_priors(Priors())
    scorer.priors.fit(training_groups(split, n_negatives=1))
    serializer = TextSerializer()
    index = ItemIndex(scorer, "probe")
    index.add({i: serializer.item(split.dataset.items[i]) for i in split.candidate_pool()})
    records = split.valid[:5]
    cases = probe.top_cases(scorer, split, records, index, serializer, n_negatives=10)
    for record, case in zip(records, cases):
        assert case.candidate_ids[case.target] == record.target and len(case.candidate_ids) == 11
        assert not set(case.candidate_ids[1:]) & {record.target, *record.context}
    # The negatives are the catalog's best-ranked items (encoder plus priors), not a sample.
    record = records[0]
    prior = CatalogPrior(scorer.priors, index, {i: serializer.item(split.dataset.items[i]) for i in index.ids})
    scores = index.scores(scorer.encode([cases[0].user_text])) + prior.scores([cases[0].user_text], [record.context])
    allowed = sorted((float(scores[0, index.row(i)]) for i in index.ids if i not in {record.target, *record.context}), reverse=True)
    chosen = [float(scores[0, index.row(i)]) for i in cases[0].candidate_ids[1:]]
    assert chosen == pytest.approx(allowed[:10])  # by score, so tied items may come in either order
