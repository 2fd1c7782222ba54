"""The neighbour_text prior: what a user's items are bought with, read as words, so it reaches
items training never saw; saved with the tables, and refused on tables fitted without texts."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from coldstart_peft import TrainConfig, TrainGroup, apply_method, build_scorer, create_host, load_adapter, save_adapter, train
from coldstart_peft.errors import ConfigError, CorruptAdapterError
from coldstart_peft.priors import Priors, PriorTables
from coldstart_peft.priors.storage import TABLES_FILE
from coldstart_peft.retrieval.catalog_prior import CatalogPrior

HOST = create_host(load_entrypoints=False)
FEATURES = ("lexical", "cooccurrence", "neighbour_text")
NEIGHBOUR = FEATURES.index("neighbour_text")


def _groups():
    """Shoppers who bought a shampoo (S) next to a conditioner (C); one bought a lipstick (L) after a mascara (M)."""
    texts = {"S": "argan shampoo", "C": "argan conditioner", "L": "red lipstick", "M": "black mascara"}
    groups = [TrainGroup(f"clicked {texts['S']}", [texts["C"], texts["L"]], [1.0, 0.0], item_ids=["C", "L"],
                         context_ids=["S"]) for _ in range(3)]  # fmt: skip
    groups.append(TrainGroup(f"clicked {texts['M']}", [texts["L"], texts["C"]], [1.0, 0.0], item_ids=["L", "C"], context_ids=["M"]))
    return groups


@pytest.fixture(scope="module")
def tokenizer(tiny_base):
    return build_scorer("bi-encoder", tiny_base, host=HOST).tokenizer


@pytest.fixture()
def priors(tokenizer):
    priors = Priors(FEATURES, tokenizer=tokenizer)
    priors.fit(_groups())
    return priors


def test_a_new_item_scores_by_the_words_of_what_the_users_items_are_bought_with(priors):
    # Neither candidate was ever seen in training: co-occurrence is blind to both, their own words
    # share nothing with the user's, but one reads like the conditioner shampoo buyers add.
    features = priors.pairs(["clicked argan shampoo"] * 2, ["argan conditioner travel size", "black eyeliner"],
                            [["S"], ["S"]], ["new-1", "new-2"])  # fmt: skip
    assert features[:, FEATURES.index("cooccurrence")].tolist() == [0.0, 0.0]
    assert features[0, NEIGHBOUR] > 0.3 and features[1, NEIGHBOUR] == 0
    unknown = priors.pairs(["clicked something"], ["argan conditioner"], [["never-seen"]], ["C"])
    assert unknown[0, NEIGHBOUR] == 0, "a context training never saw has no neighbours"


def test_training_grid_keeps_a_groups_positive_out_of_its_own_profile(tokenizer):
    # The lipstick's only neighbour is the mascara, through the one group that bought it.
    priors = Priors(FEATURES, tokenizer=tokenizer)
    groups = _groups()
    priors.fit(groups)
    grid = priors.grid(groups)
    lipstick_group, shampoo_group = 3, 0
    assert grid[lipstick_group, :, NEIGHBOUR].abs().sum() == 0, "the positive was the context's only neighbour"
    # Three groups bought C next to S: each still sees the other two, so its positive's text stays.
    assert grid[shampoo_group, 0, NEIGHBOUR] > 0.9 and grid[shampoo_group, 1, NEIGHBOUR] == 0
    scored = priors.pairs(["clicked black mascara"], ["red lipstick"], [["M"]], ["L"])
    assert scored[0, NEIGHBOUR] > 0.9, "a scored user (not a training group) sees every training pair"


def test_item_texts_round_trip_through_the_tables_file_and_change_the_digest(priors, tokenizer, tmp_path):
    path = priors.tables.save(tmp_path / "tables.safetensors")
    loaded = PriorTables.from_state(load_file(str(path)), str(path))
    assert (loaded.item_text != priors.tables.item_text).nnz == 0 and priors.tables.item_text.nnz > 0
    assert loaded.digest() == priors.tables.digest()
    without = PriorTables.fit(_groups(), tokenizer, "words")
    assert without.item_text is None and without.digest() != priors.tables.digest()
    again = Priors(FEATURES, tables=loaded, tokenizer=tokenizer)
    args = (["clicked argan shampoo"], ["argan conditioner travel size"], [["S"]], ["new"])
    torch.testing.assert_close(again.pairs(*args), priors.pairs(*args))


def test_tables_without_item_texts_refuse_the_feature_by_name(tokenizer):
    tables = PriorTables.fit(_groups(), tokenizer, "words")
    priors = Priors(FEATURES, tables=tables, tokenizer=tokenizer)
    with pytest.raises(ConfigError, match="neighbour_text"):
        priors.pairs(["clicked argan shampoo"], ["argan conditioner"], [["S"]], ["C"])


@pytest.mark.parametrize("damage", ["drop_one", "bad_start"])
def test_damaged_item_text_tensors_are_refused(priors, tmp_path, damage):
    state = priors.tables.state()
    if damage == "drop_one":
        del state["text_cols"]
    else:
        state["text_starts"] = state["text_starts"].clone()
        state["text_starts"][-1] += 5
    with pytest.raises(CorruptAdapterError):
        PriorTables.from_state(state, "test")


def test_catalog_prior_ranks_a_catalog_as_pairs_do(priors):
    class Index:  # CatalogPrior reads the index's ids only
        ids = ["C", "L", "new"]

    texts = {"C": "argan conditioner", "L": "red lipstick", "new": "argan conditioner travel size"}
    catalog = CatalogPrior(priors, Index(), texts)
    whole = catalog.scores(["clicked argan shampoo"], [["S"]])
    pairs = priors.score(["clicked argan shampoo"] * 3, [texts[i] for i in Index.ids], [["S"]] * 3, Index.ids)
    np.testing.assert_allclose(whole[0].numpy(), pairs, rtol=1e-5, atol=1e-6)


def test_a_scorer_trained_with_the_feature_saves_and_reloads_it(tiny_base, tmp_path):
    scorer = build_scorer("bi-encoder", tiny_base, {"max_length": 32}, host=HOST)
    scorer.attach_priors(Priors(FEATURES))
    apply_method(scorer, HOST.method("lora")())
    scorer.priors.fit(_groups())
    train(scorer, scorer.method, _groups() * 4, config=TrainConfig(max_steps=3, batch_size=4, prior_lr=0.1,
                                                                   progress=False, precision="fp32"))  # fmt: skip
    with torch.no_grad():
        scorer.priors.weight.copy_(torch.tensor([1.5, 0.4, 3.0]))
    folder = save_adapter(scorer, tmp_path / "adapter")
    loaded = load_adapter(folder)
    assert loaded.priors.features == FEATURES
    assert loaded.priors.named_weights() == pytest.approx({"lexical": 1.5, "cooccurrence": 0.4, "neighbour_text": 3.0})
    assert (loaded.priors.tables.item_text != scorer.priors.tables.item_text).nnz == 0
    # Tables from another fit (without texts) under the same file name are not the trained ones.
    save_file(PriorTables.fit(_groups(), scorer.tokenizer, "words").state(), str(folder / TABLES_FILE))
    with pytest.raises(CorruptAdapterError, match="not the ones it was trained with"):
        load_adapter(folder)
