"""A popularity prior keyed by item text: log(1 + times the item was a training positive).

Scorers only ever see text, so the prior is keyed by a 64-bit hash of the item text: an item
never seen in training (a cold item) gets 0, exactly the no-information value. Fused into a
scorer as ``logit + w · prior`` with ``w`` learned, it lets a fine-tuned model know what the
TF-IDF + popularity hybrid knows — what is popular — on top of what the text says.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable, Sequence

import torch

from coldstart_peft.examples import TrainGroup


def text_key(text: str) -> int:
    """A stable signed 64-bit hash of ``text`` (Python's ``hash`` is salted per process)."""
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "little", signed=True)


def count_positives(groups: Iterable[TrainGroup]) -> Counter:
    """How often each item text is a positive across training groups."""
    counts: Counter = Counter()
    for group in groups:
        for text, label in zip(group.item_texts, group.labels):
            if label > 0.5:
                counts[text] += 1
    return counts


def prior_tables(counts: Counter) -> tuple[torch.Tensor, torch.Tensor]:
    """Sorted hash keys and their log(1 + count) values, ready for :func:`lookup`."""
    if not counts:
        return torch.zeros(0, dtype=torch.int64), torch.zeros(0)
    pairs = sorted((text_key(text), float(torch.tensor(count).log1p())) for text, count in counts.items())
    keys = torch.tensor([k for k, _ in pairs], dtype=torch.int64)
    values = torch.tensor([v for _, v in pairs], dtype=torch.float32)
    return keys, values


def lookup(keys: torch.Tensor, values: torch.Tensor, texts: Sequence[str]) -> torch.Tensor:
    """Prior value of each text (0 for texts not in the table)."""
    if not len(keys):
        return torch.zeros(len(texts))
    query = torch.tensor([text_key(t) for t in texts], dtype=torch.int64, device=keys.device)
    position = torch.searchsorted(keys, query).clamp(max=len(keys) - 1)
    found = keys[position] == query
    return torch.where(found, values[position], torch.zeros_like(values[position])).float()
