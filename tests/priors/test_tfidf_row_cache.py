"""The TF-IDF rows a table keeps per text: the same rows as computing afresh, per tokenizer, and bounded."""

from __future__ import annotations

import numpy as np
import pytest
from transformers import BertTokenizerFast

from coldstart_peft import TrainGroup, build_scorer, create_host
from coldstart_peft.priors import Priors, tables as tables_module

HOST = create_host(load_entrypoints=False)
ITEMS = ["Red lipstick by Rimmel", "Blue soap bar", "Rimmel mascara black", "Argan shampoo", "rimmel RIMMEL red red"]
GROUPS = [TrainGroup(f"Recently bought: {ITEMS[(i + 1) % 5]}", [t], [1.0], item_ids=[f"i{i}"], context_ids=[f"i{(i + 1) % 5}"])
          for i, t in enumerate(ITEMS)]  # fmt: skip
TEXTS = ["Rimmel red lipstick", "soap", "", "Argan shampoo and soap", "Rimmel red lipstick", "never seen words"]


@pytest.fixture(scope="module")
def tokenizer(tiny_base):
    return build_scorer("bi-encoder", tiny_base, host=HOST).tokenizer


def _fitted(tokenizer, units):
    priors = Priors(("lexical",), tokenizer=tokenizer, lexical_units=units)
    priors.fit(GROUPS)
    return priors.tables


@pytest.mark.parametrize("units", ["words", "wordpiece"])
def test_kept_rows_equal_rows_computed_afresh_in_any_order(tokenizer, units):
    kept = _fitted(tokenizer, units)
    first = kept.tfidf(tokenizer, TEXTS)
    assert first.nnz > 0 and first.has_canonical_format
    # Every text is kept now; a fresh table (nothing kept) must give the same rows, reordered too.
    again, fresh = kept.tfidf(tokenizer, TEXTS[::-1]), _fitted(tokenizer, units).tfidf(tokenizer, TEXTS[::-1])
    assert (again != fresh).nnz == 0 and (again != first[::-1]).nnz == 0
    norms = np.sqrt(np.asarray(first.multiply(first).sum(axis=1)).ravel())
    assert np.allclose(norms[[0, 1, 3]], 1.0) and norms[2] == 0


def test_wordpiece_rows_are_kept_per_tokenizer(tokenizer, tmp_path):
    tables = _fitted(tokenizer, "wordpiece")
    # A second tokenizer whose ids mean other wordpieces: rows kept for the first must not be reused.
    vocab = list(tokenizer.get_vocab())
    (tmp_path / "vocab.txt").write_text("\n".join(sorted(vocab, reverse=True)) + "\n")
    other = BertTokenizerFast(vocab_file=str(tmp_path / "vocab.txt"))
    mine = tables.tfidf(tokenizer, ["Rimmel red lipstick"])
    theirs = tables.tfidf(other, ["Rimmel red lipstick"])
    assert (theirs != _fitted(tokenizer, "wordpiece").tfidf(other, ["Rimmel red lipstick"])).nnz == 0
    assert (mine != theirs).nnz > 0
    assert (tables.tfidf(tokenizer, ["Rimmel red lipstick"]) != mine).nnz == 0


def test_the_kept_rows_stay_under_the_bound(tokenizer, monkeypatch):
    monkeypatch.setattr(tables_module, "ROW_CACHE_SIZE", 3)
    tables = _fitted(tokenizer, "words")
    for start in range(0, len(TEXTS), 2):
        rows = tables.tfidf(tokenizer, TEXTS[start : start + 2])
        assert len(tables._cache) <= 3
        assert (rows != _fitted(tokenizer, "words").tfidf(tokenizer, TEXTS[start : start + 2])).nnz == 0
    # One call with more new texts than the bound: right rows, and the cache still within it.
    rows = tables.tfidf(tokenizer, TEXTS + ["Blue soap bar", "mascara"])
    assert len(tables._cache) <= 3
    assert (rows != _fitted(tokenizer, "words").tfidf(tokenizer, TEXTS + ["Blue soap bar", "mascara"])).nnz == 0
