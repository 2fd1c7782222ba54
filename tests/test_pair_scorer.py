"""PairScorer: a third-party pair scorer writes only its tokenizer call and its head, and trains with the priors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from coldstart_peft import (
    ConfigError, PairScorer, PairScorerConfig, TrainConfig, TrainGroup, apply_method, build_scorer, create_host, ranking_loss, train,
)  # fmt: skip
from coldstart_peft.priors import Priors

HOST = create_host(load_entrypoints=False)


class FirstToken(PairScorer):
    """The example of PairScorer's docstring: a linear head on the first token of the pair."""

    name = "first-token"

    def __init__(self, backbone, tokenizer, config=None):
        super().__init__(backbone, tokenizer, config)
        self.head = torch.nn.Linear(backbone.config.hidden_size, 1)

    def tokenize_pairs(self, user_texts, item_texts):
        return self.tokenizer(list(user_texts), list(item_texts), truncation=True,
                              max_length=self.config.max_length, padding=True, return_tensors="pt")  # fmt: skip

    def pair_logits(self, inputs):
        return self.head(self.backbone(**inputs).last_hidden_state[:, 0]).squeeze(-1)


def _scorer(tiny_base, **config) -> FirstToken:
    base = build_scorer("bi-encoder", tiny_base, host=HOST)
    return FirstToken(base.backbone, base.tokenizer, {"max_length": 32, **config})


def _with_ids(groups: list[TrainGroup]) -> list[TrainGroup]:
    """The toy colour task with ids, so the priors have something to count: an item's id is its text."""
    return [TrainGroup(g.user_text, g.item_texts, g.labels, item_ids=list(g.item_texts),
                       context_ids=[g.user_text.split("clicked ")[1]]) for g in groups]  # fmt: skip


def test_two_methods_are_enough_to_train_with_priors_and_score(tiny_base, toy_task):
    groups = _with_ids(toy_task[0])
    scorer = _scorer(tiny_base)
    scorer.attach_priors(Priors())
    apply_method(scorer, HOST.method("lora")())
    head, priors = scorer.head.weight.detach().clone(), scorer.priors.weight.detach().clone()
    result = train(scorer, scorer.method, groups, config=TrainConfig(max_steps=4, batch_size=8, prior_lr=0.1,
                                                                     progress=False, precision="fp32"))  # fmt: skip
    assert result.steps == 4
    # The head trains, and the priors' weights move: their offsets reached the loss.
    assert not torch.allclose(scorer.head.weight, head) and (scorer.priors.weight.detach() - priors).abs().max() > 1e-4
    users, items = [g.user_text for g in groups[:5]], [g.item_texts[0] for g in groups[:5]]
    scorer.precision = "fp32"
    with_priors = scorer.score(users, items, context_ids=[g.context_ids for g in groups[:5]], item_ids=items)
    text_only = scorer.score_texts(users, items)
    assert with_priors.shape == text_only.shape == (5,) and np.isfinite(with_priors).all()
    assert not np.allclose(with_priors, text_only, atol=1e-4), "score adds the priors to the pair logits"
    with torch.no_grad():
        logits = scorer.pair_logits(scorer.pair_inputs(users, items))
        np.testing.assert_allclose(scorer.forward_pairs(users, items).numpy(), logits.numpy(), rtol=1e-6)


@pytest.mark.parametrize("loss", ["bce", "listwise", "bpr"])
def test_the_loss_is_the_configs_over_each_group_with_each_pairs_own_offset(tiny_base, toy_task, loss):
    scorer = _scorer(tiny_base, loss=loss).eval()
    groups = toy_task[0][:3]
    batch = scorer.collate(groups)
    sizes = [len(g.item_texts) for g in groups]
    assert batch["group_index"].tolist() == [i for i, n in enumerate(sizes) for _ in range(n)]
    assert batch["labels"].tolist() == [float(y) for g in groups for y in g.labels]
    offsets = torch.randn(len(groups), sum(sizes))
    with torch.no_grad():
        logits = scorer.pair_logits({k: v for k, v in batch.items() if k not in ("labels", "group_index")})
        own = offsets[batch["group_index"], torch.arange(sum(sizes))]
        expected = ranking_loss(loss, logits + own, batch["labels"], batch["group_index"])
        assert scorer.compute_loss(batch, offsets).item() == pytest.approx(expected.item(), rel=1e-6)
        assert scorer.compute_loss(batch).item() != pytest.approx(expected.item(), rel=1e-3)


def test_an_unknown_loss_is_refused_by_name():
    with pytest.raises(ConfigError, match="loss must be one of bce, listwise, bpr, got 'hinge'"):
        PairScorerConfig(loss="hinge").validate()
