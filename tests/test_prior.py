"""The learned popularity prior: lookup by text, zero for unseen items, saved with the adapter."""

from __future__ import annotations

from collections import Counter

import torch

from coldstart_peft import TrainConfig, TrainGroup, apply_method, build_scorer, create_host, load_adapter, save_adapter, train
from coldstart_peft.prior import count_positives, lookup, prior_tables

HOST = create_host(load_entrypoints=False)


def test_lookup_returns_log_counts_and_zero_for_unseen_texts():
    keys, values = prior_tables(Counter({"red lipstick": 3, "blue soap": 1}))
    got = lookup(keys, values, ["blue soap", "never seen", "red lipstick"])
    assert torch.allclose(got, torch.tensor([torch.log1p(torch.tensor(1.0)), 0.0, torch.log1p(torch.tensor(3.0))]))
    assert lookup(*prior_tables(Counter()), ["x"]).tolist() == [0.0]


def test_only_positives_are_counted():
    groups = [TrainGroup("u", ["a", "b"], [1.0, 0.0]), TrainGroup("v", ["a", "c"], [1.0, 0.0])]
    assert count_positives(groups) == Counter({"a": 2})


def test_prior_trains_and_round_trips(tiny_base, toy_task, tmp_path):
    train_groups, _ = toy_task
    for scorer_name in ("bi-encoder", "cross-encoder"):
        scorer = build_scorer(scorer_name, tiny_base, {"max_length": 48, "popularity_prior": True}, host=HOST)
        method = HOST.method("lora")()
        apply_method(scorer, method)
        train(scorer, method, train_groups[:48], None, TrainConfig(max_steps=4, lr=1e-2, progress=False))
        assert len(scorer.prior_keys) > 0
        assert scorer.prior_weight.item() != 1.0, "the prior weight is learned"
        popular = max(count_positives(train_groups[:48]).items(), key=lambda kv: kv[1])[0]
        scorer.precision = "fp32"
        with_prior = scorer.score(["likes red"], [popular])
        with torch.no_grad():
            scorer.prior_weight.zero_()
        assert scorer.score(["likes red"], [popular]) != with_prior
        with torch.no_grad():
            scorer.prior_weight.fill_(0.7)
        loaded = load_adapter(save_adapter(scorer, tmp_path / scorer_name), host=HOST)
        loaded.precision = "fp32"
        assert torch.equal(loaded.prior_keys.cpu(), scorer.prior_keys.cpu())
        assert loaded.score(["likes red"] * 2, [popular, "unseen item"]).tolist() == \
            scorer.score(["likes red"] * 2, [popular, "unseen item"]).tolist()
