"""Text templates and per-field budgets."""

import pytest

from coldstart_peft.data import Item, TextConfig, TextSerializer, truncate
from coldstart_peft.errors import ConfigError


def test_truncate_counts_words():
    assert truncate("a  b\nc d", 3) == "a b c"
    assert truncate("short", None) == "short"


def test_long_title_cannot_push_out_the_other_fields():
    item = Item("1", title="word " * 500, brand="Acme", categories=("Beauty", "Makeup", "Lips"), price=3.5)
    text = TextSerializer(TextConfig(budgets={"title": 5})).item(item)
    assert text == "word word word word word; Brand: Acme; Category: Makeup > Lips; Price: $3.50"


def test_user_context_keeps_most_recent_last_and_adds_demographics():
    history = [Item(str(i), title=f"t{i}") for i in range(7)]
    text = TextSerializer(TextConfig(max_history=3)).user(history, query="red lipstick",
                                                          attributes={"age": 24, "gender": "male"})  # fmt: skip
    assert text == "Recently bought: t4 | t5 | t6; Query: red lipstick; User: age 24, male"


def test_cold_user_with_nothing_known():
    assert TextSerializer().user([]) == "New user"


def test_tokenizer_budget_counts_wordpieces():
    class Chars:  # a stand-in tokenizer: one piece per character
        def tokenize(self, text):
            return list(text)

        def convert_tokens_to_string(self, pieces):
            return "".join(pieces)

    assert truncate("abcdef", 3, tokenizer=Chars()) == "abc"


def test_history_extras_follow_each_title_within_their_budgets():
    history = [Item("1", title="Lip balm", brand="Acme Labs", categories=("Beauty", "Makeup", "Lips")),
               Item("2", title="Soap")]  # fmt: skip
    config = TextConfig(history_extras=("brand", "category"), budgets={"history_title": 12, "brand": 1, "category": 10})
    assert TextSerializer(config).user(history) == "Recently bought: Lip balm (Acme, Makeup > Lips) | Soap"


def test_unknown_or_title_history_extras_are_refused():
    with pytest.raises(ConfigError, match="colour"):
        TextConfig(history_extras=("colour",))
    with pytest.raises(ConfigError, match="title"):
        TextConfig(history_extras=("title",))
