"""Length-grouped training batches: every group once per epoch, similar lengths together, a function of seed and epoch."""

from __future__ import annotations

import random

from coldstart_peft.batching import WINDOW, LengthGroupedBatchSampler


def _lengths(n=1000, seed=0):
    rng = random.Random(seed)
    return [rng.randint(10, 300) for _ in range(n)]


def test_each_epoch_yields_every_group_once_in_full_batches():
    lengths = _lengths()
    sampler = LengthGroupedBatchSampler(lengths, batch_size=32, seed=3)
    batches = list(sampler)
    assert len(batches) == len(sampler) == 32  # ceil(1000 / 32)
    assert sorted(i for b in batches for i in b) == list(range(1000))
    assert sum(len(b) < 32 for b in batches) <= 1 + 1000 // (WINDOW * 32), "only a window's last batch is short"


def test_batches_hold_similar_lengths_so_padding_falls():
    lengths = _lengths()
    grouped = list(LengthGroupedBatchSampler(lengths, batch_size=32, seed=3))
    rng = random.Random(3)
    order = list(range(1000))
    rng.shuffle(order)
    shuffled = [order[i : i + 32] for i in range(0, 1000, 32)]

    def padded(batches):
        return sum(max(lengths[i] for i in b) * len(b) for b in batches)

    assert padded(grouped) < 0.8 * padded(shuffled)


def test_order_is_a_function_of_seed_and_epoch():
    lengths = _lengths()
    first = LengthGroupedBatchSampler(lengths, 32, seed=1)
    again = LengthGroupedBatchSampler(lengths, 32, seed=1)
    assert list(first) == list(again)
    first.set_epoch(1)
    assert list(first) != list(again), "a new epoch reshuffles"
    assert list(LengthGroupedBatchSampler(lengths, 32, seed=2)) != list(again)
