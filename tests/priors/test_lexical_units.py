"""The lexical prior over whole words: what it matches, how unseen words weigh, and that its tables survive a save."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from coldstart_peft import TrainGroup, build_scorer, create_host
from coldstart_peft.errors import ConfigError, CorruptAdapterError
from coldstart_peft.priors import LEXICAL_UNITS, Priors, PriorTables

HOST = create_host(load_entrypoints=False)
ITEMS = ["Red lipstick by Rimmel", "Blue soap bar", "Rimmel mascara black", "Argan shampoo"]
GROUPS = [TrainGroup(f"Recently bought: {ITEMS[(i + 1) % 4]}", [t], [1.0], item_ids=[f"i{i}"], context_ids=[f"i{(i + 1) % 4}"])
          for i, t in enumerate(ITEMS)] * 2  # fmt: skip


@pytest.fixture(scope="module")
def tokenizer(tiny_base):
    return build_scorer("bi-encoder", tiny_base, host=HOST).tokenizer


def _lexical(priors, users, items):
    return priors.pairs(users, items).numpy()[:, list(priors.features).index("lexical")]


def test_words_match_whole_words_case_blind_and_share_nothing_with_wordpieces(tokenizer):
    priors = Priors(("lexical",), tokenizer=tokenizer, lexical_units="words")
    priors.fit(GROUPS)
    assert priors.tables.lexical_units == "words" and len(priors.tables.idf) == len(priors.tables.words) + 1
    scores = _lexical(priors, ["RIMMEL lipstick"] * 3, ["Red lipstick by Rimmel", "Rimmel mascara black", "Blue soap bar"])
    assert scores[0] > scores[1] > 0 and scores[2] == 0
    # A rarer shared word weighs more: "rimmel" is in two item texts, "lipstick" in one.
    rarer, commoner = _lexical(priors, ["lipstick", "rimmel"], ["Red lipstick by Rimmel"] * 2)
    assert rarer > commoner > 0


def test_a_word_never_seen_in_training_weighs_like_the_rarest_word(tokenizer):
    priors = Priors(("lexical",), tokenizer=tokenizer, lexical_units="words")
    priors.fit(GROUPS)
    unseen = priors.tables.idf[-1].item()
    assert unseen == pytest.approx(float(priors.tables.idf.max())) and unseen > float(priors.tables.idf.min())
    # A cold item's new brand still matches a query that names it.
    assert _lexical(priors, ["zoella"], ["Zoella bath fizz"])[0] > 0


def test_word_tables_round_trip_and_differ_from_wordpiece_tables(tokenizer, tmp_path):
    words = Priors(tokenizer=tokenizer, lexical_units="words")
    words.fit(GROUPS)
    pieces = Priors(tokenizer=tokenizer, lexical_units="wordpiece")
    pieces.fit(GROUPS)
    assert pieces.tables.lexical_units == "wordpiece" and pieces.tables.words is None
    assert words.tables.digest() != pieces.tables.digest()
    reloaded = PriorTables.from_state(load_file(str(words.tables.save(tmp_path / "t.safetensors"))), "test")
    assert reloaded.digest() == words.tables.digest()
    again = Priors(tokenizer=tokenizer, tables=reloaded)
    assert again.lexical_units == "words"
    users, items = ["Rimmel red", "soap and shampoo"], ["Red lipstick by Rimmel", "Argan shampoo"]
    np.testing.assert_allclose(again.pairs(users, items, [["i1"], ["i2"]], ["i0", "i3"]).numpy(),
                               words.pairs(users, items, [["i1"], ["i2"]], ["i0", "i3"]).numpy())  # fmt: skip


def test_word_tables_with_a_wrong_idf_length_or_a_bad_unit_are_refused(tokenizer):
    words = Priors(tokenizer=tokenizer, lexical_units="words")
    words.fit(GROUPS)
    state = words.tables.state()
    state["idf"] = state["idf"][:-1].contiguous()
    with pytest.raises(CorruptAdapterError, match="inconsistent"):
        PriorTables.from_state(state, "test")
    state = words.tables.state()
    state["words"] = state["words"].to(torch.int32)
    with pytest.raises(CorruptAdapterError):
        PriorTables.from_state(state, "test")
    with pytest.raises(ConfigError, match="wordpiece, words"):
        Priors(lexical_units="letters")
    assert LEXICAL_UNITS == ("wordpiece", "words")


@pytest.mark.parametrize("units", LEXICAL_UNITS)
def test_the_recipe_fits_the_tables_in_the_units_it_is_given(tiny_base, units):
    from coldstart_peft import TrainConfig
    from coldstart_peft.recipes import FitSettings, build_for_training

    scorer, _, _ = build_for_training(FitSettings(method="lora", base_model=tiny_base, lexical_units=units),
                                      TrainConfig(max_steps=1, progress=False), n_groups=len(GROUPS))  # fmt: skip
    scorer.priors.fit(GROUPS)
    assert scorer.priors.tables.lexical_units == units
    assert (scorer.priors.tables.words is None) == (units == "wordpiece")
