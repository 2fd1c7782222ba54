"""Training batches of similar length: the same shuffled data, less padding.

Every batch is padded to its longest input, so a batch that mixes a 20-token and a 120-token
group computes mostly padding. Like ``transformers``' ``group_by_length``, the groups are
shuffled, cut into windows of ``WINDOW`` batches, sorted by length inside each window, batched,
and the batches shuffled again: batch contents stay random at the scale of the data set while
each batch holds groups of about one length.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import torch

WINDOW = 50
"""Batches per sorting window (transformers uses the same number)."""


class LengthGroupedBatchSampler(torch.utils.data.Sampler[list[int]]):
    """Index batches of groups of similar length, a pure function of the seed and the epoch.

    Args:
        lengths: a length per training group (any monotone proxy, e.g. characters).
        batch_size: groups per batch.
        seed: the run's seed.

    Example:
        >>> sampler = LengthGroupedBatchSampler([5, 1, 9, 3], batch_size=2, seed=0)
        >>> sorted(len(b) for b in sampler)
        [2, 2]
    """

    def __init__(self, lengths: Sequence[int], batch_size: int, seed: int):
        self.lengths = list(lengths)
        self.batch_size = batch_size
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Use the order of ``epoch`` (each epoch reshuffles)."""
        self.epoch = epoch

    def __len__(self) -> int:
        return math.ceil(len(self.lengths) / self.batch_size)

    def __iter__(self) -> Iterator[list[int]]:
        generator = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        order = torch.randperm(len(self.lengths), generator=generator).tolist()
        span = WINDOW * self.batch_size
        batches = []
        for start in range(0, len(order), span):
            window = sorted(order[start : start + span], key=self.lengths.__getitem__)
            batches += [window[i : i + self.batch_size] for i in range(0, len(window), self.batch_size)]
        for index in torch.randperm(len(batches), generator=generator).tolist():
            yield batches[index]
