"""The item-similarity probe (benchmarks/probes/item_similarity.py): what it computes, and that it runs end to end."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from _scripts import load_benchmark, run_probe

from coldstart_peft.examples import RankingCase

probe = load_benchmark("probes/item_similarity.py")


class _Tower:
    """Item embeddings by text: what the probe reads from a trained scorer."""

    def __init__(self, vectors: dict[str, list[float]]):
        self.vectors = vectors

    def encode_items(self, texts):
        return torch.tensor([self.vectors[t] for t in texts], dtype=torch.float32)


class _Serializer:
    def item(self, item):
        return item.title


def test_similarities_pool_each_candidates_cosine_over_the_clicked_items():
    tower = _Tower({"a": [1, 0], "b": [0, 2], "x": [3, 0], "y": [1, 1], "z": [0, -1]})
    split = SimpleNamespace(dataset=SimpleNamespace(items={"A": SimpleNamespace(title="a"), "B": SimpleNamespace(title="b")}))
    cases = [RankingCase("u", ["x", "y", "z"], target=0, context_ids=["A", "B"]),
             RankingCase("v", ["x", "y"], target=1, context_ids=[])]  # fmt: skip
    pooled = probe.item_similarities(tower, split, _Serializer(), cases)
    best, mean = pooled["max"], pooled["mean"]
    half = 1 / np.sqrt(2)
    # Cosines, not dot products: x is 3a, yet its similarity to a is 1.
    np.testing.assert_allclose(best[0], [1.0, half, 0.0], atol=1e-6)
    np.testing.assert_allclose(mean[0], [0.5, half, -0.5], atol=1e-6)
    np.testing.assert_array_equal(best[1], [0.0, 0.0])  # nothing clicked: the recipe's score alone


@pytest.mark.slow
def test_the_probe_chooses_weights_on_calibration_users_and_writes_its_report(tmp_path):
    run_probe("item_similarity.py", "--split", "cold-item", "--seconds", "3", "--calibration-users", "40", "--out", str(tmp_path))
    report = json.loads((tmp_path / "item_similarity.json").read_text())
    assert [arm["pool"] for arm in report["arms"]] == ["max", "mean"] and report["steps"] > 0
    for arm in report["arms"]:
        calibration = arm["calibration_ndcg@10"]
        assert arm["weight_chosen_on_calibration"] == float(max(calibration, key=calibration.get))
    assert report["calibration_users"] == 40 and report["held_out_users"] > 0
    assert "similarity to the clicked items" in (tmp_path / "item_similarity.md").read_text()
