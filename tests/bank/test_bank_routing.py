"""Routing: one mixed batch, grouped by domain, and one pair at a time all give the same scores."""

from __future__ import annotations

import numpy as np
import pytest

from _bank_helpers import ITEMS, MIXED, USERS, load_fp32, tiny_bank
from coldstart_peft import ConfigError


@pytest.mark.parametrize("method", ["lora", "ia3", "bottleneck"])
def test_grouped_equals_one_at_a_time_equals_own_scorer(tmp_path, tiny_base, method):
    scorers, _ = tiny_bank(tmp_path / "bank", tiny_base, method)
    bank = load_fp32(tmp_path / "bank")
    expected = np.array([scorers[d].score([u], [i])[0] for u, i, d in zip(USERS, ITEMS, MIXED)])
    grouped = bank.score(USERS, ITEMS, domains=MIXED, mixed=False)
    one_at_a_time = np.array([bank.score([u], [i], domains=d)[0] for u, i, d in zip(USERS, ITEMS, MIXED)])
    np.testing.assert_allclose(grouped, expected, atol=1e-5)
    np.testing.assert_allclose(one_at_a_time, expected, atol=1e-5)
    if bank.method.supports_mixed_batches:
        np.testing.assert_allclose(bank.score(USERS, ITEMS, domains=MIXED, mixed=True, batch_size=5), expected, atol=1e-5)
    else:
        with pytest.raises(ConfigError, match="mixed=False"):
            bank.score(USERS, ITEMS, domains=MIXED, mixed=True)


def test_mixed_batch_with_fallback_rows_and_rank(tmp_path, tiny_base):
    scorers, global_scorer = tiny_bank(tmp_path / "bank", tiny_base)
    bank = load_fp32(tmp_path / "bank")
    domains = [*MIXED[:-2], "Unknown", None]  # rows routed to the global adapter share the batch
    mixed = bank.score(USERS, ITEMS, domains=domains, mixed=True, batch_size=4)
    grouped = bank.score(USERS, ITEMS, domains=domains, mixed=False)
    np.testing.assert_allclose(mixed, grouped, atol=1e-5)
    np.testing.assert_allclose(mixed[-2:], global_scorer.score(USERS[-2:], ITEMS[-2:]), atol=1e-5)
    ranking = bank.rank(USERS[0], ITEMS[:4], domain="Makeup")
    own = scorers["Makeup"].score([USERS[0]] * 4, ITEMS[:4])
    assert ranking.order == list(np.argsort(-own, kind="stable"))
    assert {r.reason for r in ranking.routes} == {"domain"}


def test_merged_fast_path_matches_the_bank(tmp_path, tiny_base):
    tiny_bank(tmp_path / "bank", tiny_base)
    bank = load_fp32(tmp_path / "bank")
    merged = bank.merged_scorer("Makeup")
    merged.precision = "fp32"
    np.testing.assert_allclose(merged.score(USERS, ITEMS), bank.score(USERS, ITEMS, domains="Makeup"), atol=1e-5)
    assert not hasattr(merged.backbone, "peft_config")  # plain transformers model: no adapter arithmetic left


@pytest.mark.parametrize("apart", [False, True])
def test_default_batching_mixes_pair_readers_and_groups_text_embedders(tmp_path, tiny_base, monkeypatch, apart):
    import coldstart_peft.bank.bank as bank_module

    tiny_bank(tmp_path / "bank", tiny_base)
    bank = load_fp32(tmp_path / "bank")
    grouped = bank.score(USERS, ITEMS, domains=MIXED, mixed=False)
    calls = []
    real = bank_module.score_mixed
    monkeypatch.setattr(bank_module, "score_mixed", lambda *a, **k: calls.append(1) or real(*a, **k))
    monkeypatch.setattr(type(bank.scorer), "embeds_texts_apart", apart)
    np.testing.assert_allclose(bank.score(USERS, ITEMS, domains=MIXED), grouped, atol=1e-5)
    # A bi-encoder would embed every pair's texts in a mixed batch; by domain, each text once.
    assert bool(calls) is not apart
