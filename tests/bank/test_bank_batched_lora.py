"""Mixed-domain batches through the gathered multi-adapter LoRA path equal one adapter at a time."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from _bank_helpers import ITEMS, MIXED, USERS, load_fp32, tiny_bank
from coldstart_peft.bank import FallbackConfig
from coldstart_peft.bank import batched_lora


@pytest.mark.parametrize("with_base_rows", [False, True])
def test_batched_mixed_batches_equal_grouped_and_peft_mixed(tmp_path, tiny_base, monkeypatch, with_base_rows):
    tiny_bank(tmp_path / "bank", tiny_base)
    bank = load_fp32(tmp_path / "bank", fallback=FallbackConfig(chain=("base",)))
    domains = [("Nails" if with_base_rows and i % 4 == 0 else d) for i, d in enumerate(MIXED)]
    grouped = bank.score(USERS, ITEMS, domains=domains, mixed=False)
    peft_mixed = bank.score(USERS, ITEMS, domains=domains, mixed=True, batched_lora=False)
    calls = []
    real = batched_lora._forward
    monkeypatch.setattr(batched_lora, "_forward", lambda *a, **k: calls.append(1) or real(*a, **k))
    batched = bank.score(USERS, ITEMS, domains=domains, mixed=True)
    assert calls, "the gathered path ran"
    np.testing.assert_allclose(batched, grouped, atol=1e-5)
    np.testing.assert_allclose(batched, peft_mixed, atol=1e-5)


def test_the_stacks_follow_a_hot_swap(tmp_path, tiny_base):
    from _bank_helpers import tiny_scorer
    from coldstart_peft import save_adapter

    tiny_bank(tmp_path / "bank", tiny_base)
    bank = load_fp32(tmp_path / "bank")
    bank.score(USERS, ITEMS, domains=MIXED, mixed=True)  # builds the stacks
    bank.add("Makeup", save_adapter(tiny_scorer(tiny_base, "lora", 31), tmp_path / "new"), replace=True)
    np.testing.assert_allclose(bank.score(USERS, ITEMS, domains=MIXED, mixed=True),
                               bank.score(USERS, ITEMS, domains=MIXED, mixed=False), atol=1e-5)  # fmt: skip


@pytest.mark.parametrize("batched", [True, False])
def test_mixed_batches_run_whole_where_length_blocks_would_split_them(tmp_path, tiny_base, batched):
    tiny_bank(tmp_path / "bank", tiny_base)
    bank = load_fp32(tmp_path / "bank")
    bank.scorer.length_block_cost = 1  # any length difference would split a batch into blocks
    items = [item + " soap" * (i % 5) * 3 for i, item in enumerate(ITEMS)]
    grouped = bank.score(USERS, items, domains=MIXED, mixed=False)
    mixed = bank.score(USERS, items, domains=MIXED, mixed=True, batched_lora=batched, batch_size=12)
    np.testing.assert_allclose(mixed, grouped, atol=1e-5)
    assert bank.scorer.length_block_cost == 1


def test_batches_with_different_domain_subsets_share_one_stack(tmp_path, tiny_base):
    tiny_bank(tmp_path / "bank", tiny_base)
    bank = load_fp32(tmp_path / "bank")
    batched = bank._slots.batched()
    subsets = [MIXED, [d for d in MIXED if d != MIXED[0]]]  # all three domains, then two of them
    results, stacks = [], []
    for domains in subsets:
        users = USERS[: len(domains)]
        items = ITEMS[: len(domains)]
        results.append((bank.score(users, items, domains=domains, mixed=True),
                        bank.score(users, items, domains=domains, mixed=False)))  # fmt: skip
        stacks.append(batched._stack()[1])  # the stacks the batches above used
    for mixed, grouped in results:
        np.testing.assert_allclose(mixed, grouped, atol=1e-5)
    assert stacks[0] is stacks[1], "a batch holding another subset of domains rebuilt the stacks"


@pytest.mark.parametrize("split", [True, False])
def test_a_mixed_batch_is_tokenized_once_where_the_scorer_splits_its_inputs(tmp_path, tiny_base, monkeypatch, split):
    tiny_bank(tmp_path / "bank", tiny_base)
    bank = load_fp32(tmp_path / "bank")
    grouped = bank.score(USERS, ITEMS, domains=MIXED, mixed=False)
    if not split:  # a third-party scorer with forward_pairs only: each domain's rows are tokenized again
        real_inputs = bank.scorer.pair_inputs
        monkeypatch.setattr(bank.scorer, "forward_pairs", lambda users, items: bank.scorer.pair_logits(real_inputs(users, items)))
        monkeypatch.setattr(bank.scorer, "pair_inputs", lambda users, items: None)
    calls = []
    real = bank.scorer.tokenize_pairs
    monkeypatch.setattr(bank.scorer, "tokenize_pairs", lambda users, items: calls.append(len(users)) or real(users, items))
    mixed = bank.score(USERS, ITEMS, domains=MIXED, mixed=True, batch_size=len(USERS))
    np.testing.assert_allclose(mixed, grouped, atol=1e-5)
    assert calls == ([len(USERS)] if split else [len(USERS), 4, 4])


def test_under_bf16_the_stacks_are_cast_once_and_follow_a_hot_swap(tmp_path, tiny_base):
    from _bank_helpers import tiny_scorer
    from coldstart_peft import save_adapter

    tiny_bank(tmp_path / "bank", tiny_base)
    bank = load_fp32(tmp_path / "bank")
    bank.scorer.precision = "bf16"  # emulated where the CPU lacks it; the tiny model keeps that cheap
    before = bank.score(USERS, ITEMS, domains=MIXED, mixed=True)
    batched = bank._slots.batched()
    assert [stack[0].dtype for stack in batched._cast[torch.bfloat16]] == [torch.bfloat16] * len(batched.layers)
    np.testing.assert_allclose(before, bank.score(USERS, ITEMS, domains=MIXED, mixed=False), atol=0.05, rtol=0.02)
    bank.add("Makeup", save_adapter(tiny_scorer(tiny_base, "lora", 31), tmp_path / "new"), replace=True)
    after = bank.score(USERS, ITEMS, domains=MIXED, mixed=True)
    makeup = np.array(MIXED) == "Makeup"
    assert np.abs(after[makeup] - before[makeup]).max() > 0.2, "the swapped domain still scores with the old stacks"
    np.testing.assert_allclose(after, bank.score(USERS, ITEMS, domains=MIXED, mixed=False), atol=0.05, rtol=0.02)
