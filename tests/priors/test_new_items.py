"""Training with a share of each batch's items shown to the priors as new: no popularity, no co-occurrence."""

from __future__ import annotations

import pytest
import torch

from coldstart_peft import TrainGroup, build_scorer, create_host
from coldstart_peft.data import load_dataset, make_split
from coldstart_peft.data.pairs import training_groups
from coldstart_peft.errors import ConfigError
from coldstart_peft.examples import RankingCase
from coldstart_peft.priors import DEFAULT_FEATURES, Priors
from coldstart_peft.recipes import FitSettings, build_for_training, fit_on_split, new_target_share, with_new_item_share
from coldstart_peft.training import TrainConfig

HOST = create_host(load_entrypoints=False)
TITLES = ["Red lipstick", "Blue soap", "Black mascara", "Argan shampoo", "Rose perfume", "Nail file"]
# Every user bought item i after item i+1: each item is popular and co-occurs with its neighbour.
GROUPS = [TrainGroup(f"Recently bought: {TITLES[(i + 1) % 6]}", [TITLES[i], TITLES[(i + 3) % 6]], [1.0, 0.0],
                     item_ids=[f"i{i}", f"i{(i + 3) % 6}"], context_ids=[f"i{(i + 1) % 6}"])
          for i in range(6)] * 3  # fmt: skip
CATALOG = [DEFAULT_FEATURES.index("popularity"), DEFAULT_FEATURES.index("cooccurrence")]
LEXICAL = DEFAULT_FEATURES.index("lexical")


@pytest.fixture(scope="module")
def fitted(tiny_base):
    priors = Priors(tokenizer=build_scorer("bi-encoder", tiny_base, host=HOST).tokenizer)
    priors.fit(GROUPS)
    return priors


def _grid(fitted, share, seed=0):
    torch.manual_seed(seed)
    return Priors(tokenizer=fitted.tokenizer, tables=fitted.tables, new_item_share=share).grid(GROUPS[:6])


def test_new_items_lose_their_catalog_features_for_every_user_and_keep_their_words(fitted):
    full, grid = _grid(fitted, 0.0), _grid(fitted, 0.5)
    assert full[..., CATALOG].gt(0).any(dim=0).all()  # without the share, every item has catalog features
    new = grid[..., CATALOG].eq(0).all(dim=0).all(dim=-1)
    assert 0 < int(new.sum()) < new.numel()
    # An item is new for the whole batch, and the rest of the grid is left as it was.
    assert torch.equal(grid[:, ~new], full[:, ~new])
    assert torch.equal(grid[..., LEXICAL], full[..., LEXICAL]) and full[..., LEXICAL].gt(0).any()


def test_the_seed_fixes_which_items_are_new_and_a_share_of_one_makes_them_all_new(fitted):
    assert torch.equal(_grid(fitted, 0.5, seed=3), _grid(fitted, 0.5, seed=3))
    assert not all(torch.equal(_grid(fitted, 0.5, seed=3), _grid(fitted, 0.5, seed=s)) for s in range(4, 8))
    everything = _grid(fitted, 1.0)
    assert everything[..., CATALOG].eq(0).all() and torch.equal(everything[..., LEXICAL], _grid(fitted, 0.0)[..., LEXICAL])


def test_scoring_ignores_the_share(fitted):
    users, items = [g.user_text for g in GROUPS[:6]], [g.item_texts[0] for g in GROUPS[:6]]
    contexts, ids = [g.context_ids for g in GROUPS[:6]], [g.item_ids[0] for g in GROUPS[:6]]
    shared = Priors(tokenizer=fitted.tokenizer, tables=fitted.tables, new_item_share=1.0)
    assert torch.equal(shared.pairs(users, items, contexts, ids), fitted.pairs(users, items, contexts, ids))


@pytest.mark.parametrize("share", [-0.1, 1.5])
def test_a_share_outside_zero_to_one_is_refused(share):
    with pytest.raises(ConfigError, match="new_item_share"):
        Priors(new_item_share=share)


def test_the_recipe_hands_its_share_to_the_priors(tiny_base):
    settings = FitSettings(base_model=tiny_base, new_item_share=0.4)
    scorer, _, _ = build_for_training(settings, TrainConfig(max_steps=1, precision="fp32", progress=False), 10, HOST)
    assert scorer.priors.new_item_share == 0.4


def test_an_unset_share_is_the_share_of_validation_targets_training_never_saw():
    train = [TrainGroup("u", ["a", "b"], [1.0, 0.0], item_ids=["a", "b"])]
    cases = [RankingCase("u", ["a", "b", "c"], target, candidate_ids=["a", "b", "c"]) for target in (0, 1, 2, 2)]
    assert new_target_share(cases, train) == 0.75  # "b" was only ever a negative: new to the priors
    assert new_target_share([RankingCase("u", ["x"], 0)], train) == 0.0  # no ids, nothing to count
    assert with_new_item_share(FitSettings(), cases, train).new_item_share == 0.75
    assert with_new_item_share(FitSettings(new_item_share=0.1), cases, train).new_item_share == 0.1


@pytest.mark.parametrize("kind, share", [("cold-item", 1.0), ("cold-user", None)])
def test_training_on_a_split_resolves_the_share_from_its_validation_users(tiny_base, kind, share):
    split = make_split(load_dataset("demo"), kind, k=3, n_negatives=19, seed=0)
    config = TrainConfig(max_steps=1, batch_size=4, precision="fp32", progress=False, eval_every=10_000)
    scorer, _ = fit_on_split(split, FitSettings(base_model=tiny_base, calibration_users=0, valid_users=4), config, host=HOST)
    expected = new_target_share(split.ranking_cases("valid"), training_groups(split, n_negatives=1, seed=0))
    assert scorer.priors.new_item_share == pytest.approx(expected)
    if share is not None:
        assert expected == share
    else:
        assert expected < 0.5
