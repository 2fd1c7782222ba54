"""Pair priors: context keys read back from serialized text, co-occurrence without leakage, lexical match, round trip."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from coldstart_peft import ConfigError, TrainConfig, TrainGroup, apply_method, build_scorer, create_host, load_adapter, save_adapter, train
from coldstart_peft.data.schema import Item
from coldstart_peft.data.text import TextSerializer
from coldstart_peft.pair_prior import PairPrior, context_keys, title_key

HOST = create_host(load_entrypoints=False)
LIPSTICK = Item("a", title="Velvet Matte Lipstick in Ruby Red, long wearing formula", brand="Acme",
                categories=("Beauty", "Makeup", "Lips"), price=9.5)  # fmt: skip
SOAP = Item("b", title="Lavender Soap", brand="Suds", categories=("Beauty", "Bath"), price=3.0)
BRUSH = Item("c", title="Kabuki Brush", brand="Acme", categories=("Beauty", "Tools"), price=12.0)


def test_context_keys_name_the_items_the_serializer_wrote():
    text = TextSerializer()
    user = text.user([LIPSTICK, SOAP], query="gift; for mum", attributes={"age": 30, "gender": "F"})
    assert context_keys(user) == [title_key(text.item(LIPSTICK)), title_key(text.item(SOAP))]
    assert title_key(text.item(LIPSTICK)) != title_key(text.item(SOAP))
    assert context_keys("New user") == []


class _WordTokenizer:
    """Whitespace tokenizer over a fixed vocabulary: enough for the lexical feature."""

    def __init__(self, words):
        self.vocab = {w: i for i, w in enumerate(words)}

    def __len__(self):
        return len(self.vocab)

    def __call__(self, texts, **_):
        return {"input_ids": [[self.vocab[w] for w in t.lower().replace(";", " ").split() if w in self.vocab] for t in texts]}


def _groups():
    text = TextSerializer()
    lip, soap, brush = (text.item(i) for i in (LIPSTICK, SOAP, BRUSH))
    return text, [
        TrainGroup(text.user([LIPSTICK]), [brush, soap], [1.0, 0.0]),  # two users bought the brush after the lipstick
        TrainGroup(text.user([LIPSTICK]), [brush, soap], [1.0, 0.0]),
        TrainGroup(text.user([SOAP]), [lip, brush], [1.0, 0.0]),
    ]


def test_cooccurrence_counts_other_users_and_never_the_groups_own_pair():
    text, groups = _groups()
    prior = PairPrior(_WordTokenizer(["x"]), ["cooccurrence"])
    prior.fit(groups)
    new_user = text.user([LIPSTICK])
    items = [text.item(BRUSH), text.item(SOAP), "Unknown Item; Brand: Nobody"]
    got = prior.aligned([new_user] * 3, items)[:, 0]
    # brush: 2 users; soap: 1 user (soap -> lipstick, symmetric); an unseen item: 0.
    assert torch.allclose(got, torch.tensor([math.log1p(2), math.log1p(1), 0.0]))
    grid = prior.grid([new_user], items)[0, :, 0]
    assert torch.allclose(grid, got)
    # In training, the first group's positive counts only the *other* user's purchase.
    own = prior.own_counts(groups[0])
    assert own.tolist() == [1.0, 0.0]
    trained = prior.aligned([groups[0].user_text] * 2, groups[0].item_texts, subtract=own)[:, 0]
    assert torch.allclose(trained, torch.tensor([math.log1p(1), math.log1p(1)]))


def test_lexical_feature_is_tfidf_cosine_over_tokens():
    tokenizer = _WordTokenizer(["red", "lipstick", "blue", "soap", "brand:"])
    prior = PairPrior(tokenizer, ["lexical"])
    prior.fit([TrainGroup("u", ["red lipstick; brand: a", "blue soap; brand: b", "red soap"], [1.0, 0.0, 0.0])])
    got = prior.aligned(["red lipstick"] * 3, ["red lipstick", "blue soap", "red soap"])[:, 0].numpy()
    assert got[0] == pytest.approx(1.0, abs=1e-6)
    assert got[1] == pytest.approx(0.0, abs=1e-6)
    assert 0.0 < got[2] < 1.0
    # "brand:" is in two of three items, so it weighs less than "lipstick" (in one).
    idf = prior.idf.numpy()
    assert idf[tokenizer.vocab["lipstick"]] > idf[tokenizer.vocab["brand:"]]


def test_pair_priors_train_and_round_trip_with_their_tables(tiny_base, tmp_path):
    text, base_groups = _groups()
    # The tiny model's word-level tokenizer knows colours and kinds; the serialized items carry the keys.
    groups = base_groups * 8
    for scorer_name in ("bi-encoder", "cross-encoder"):
        config = {"max_length": 48, "popularity_prior": True, "lexical_prior": True, "cooccurrence_prior": True}
        scorer = build_scorer(scorer_name, tiny_base, config, host=HOST)
        method = HOST.method("lora")()
        apply_method(scorer, method)
        train(scorer, method, groups, None, TrainConfig(max_steps=3, batch_size=4, lr=1e-2, progress=False))
        assert len(scorer.pair_prior.keys) == 3 and int(scorer.pair_prior.counts.sum()) == 24
        assert not torch.allclose(scorer.pair_prior_weight.detach(), torch.tensor([5.0, 0.5])), "weights are learned"
        with torch.no_grad():
            scorer.pair_prior_weight.copy_(torch.tensor([0.3, 1.7]))
        scorer.precision = "fp32"
        user, items = text.user([LIPSTICK]), [text.item(BRUSH), text.item(SOAP), "blue soap"]
        before = scorer.score([user] * 3, items)
        loaded = load_adapter(save_adapter(scorer, tmp_path / scorer_name), host=HOST)
        loaded.precision = "fp32"
        for name in ("keys", "rows", "cols", "counts", "idf"):
            assert torch.equal(getattr(loaded.pair_prior, name), getattr(scorer.pair_prior, name)), name
        assert np.allclose(loaded.score([user] * 3, items), before, atol=1e-5)
        with torch.no_grad():
            loaded.pair_prior_weight.zero_()
        assert not np.allclose(loaded.score([user] * 3, items), before, atol=1e-3), "the pair prior moves the scores"


def test_frozen_item_memory_refuses_pair_priors(tiny_base):
    with pytest.raises(ConfigError, match="memory_negatives=false"):
        build_scorer("bi-encoder", tiny_base, {"item_tower": "frozen", "cooccurrence_prior": True}, host=HOST)
