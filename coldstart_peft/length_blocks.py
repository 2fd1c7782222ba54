"""One padded batch cut into row blocks of similar length, each trimmed to its own longest row.

A training batch of (user, item) pairs is padded to its longest pair, and its pairs vary in
length even when the batch sampler groups similar *groups*: a group's items do not share a
length. On a CPU every padding token costs as much as a real one in each linear layer, so
running the batch as a few blocks of sorted rows, each cut to its own length, does less work
for the same result. Each extra block costs one more pass through the model's Python and small
matrix products; :func:`plan_blocks` weighs that against the padding it saves.

The blocks are taken from the already tokenized batch (rows selected, padding columns cut), so
any tokenization, left or right padding included, works unchanged.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch

CPU_BLOCK_COST = 256
"""What one more forward pass costs on a CPU, in padded tokens (``benchmarks/throughput.py``
prints the ``length blocks`` row that measures the gain)."""


def plan_blocks(lengths: Sequence[int], block_cost: int = CPU_BLOCK_COST) -> list[list[int]]:
    """Row indices in blocks of contiguous sorted length that minimise padded tokens + ``block_cost`` per block.

    An exact partition by dynamic programming over the sorted lengths (``O(n²)``; a batch has
    tens of rows).

    Args:
        lengths: real tokens per row.
        block_cost: the price of one more block, in padded tokens; ``0`` gives one block per
            distinct length, a huge value one block.

    Returns:
        The blocks, shortest rows first; every index appears exactly once.

    Example:
        >>> plan_blocks([100, 10, 12, 98], block_cost=16)
        [[1, 2], [3, 0]]
    """
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    if not order:
        return []
    sorted_lengths = [lengths[i] for i in order]
    n = len(order)
    best = [0.0] + [float("inf")] * n
    cut = [0] * (n + 1)
    for end in range(1, n + 1):
        longest = sorted_lengths[end - 1]
        for start in range(end):
            cost = best[start] + longest * (end - start) + block_cost
            if cost < best[end]:
                best[end], cut[end] = cost, start
    blocks, end = [], n
    while end > 0:
        blocks.append(order[cut[end] : end])
        end = cut[end]
    return blocks[::-1]


def length_blocks(inputs: dict[str, torch.Tensor], block_cost: int = CPU_BLOCK_COST) -> Iterator[tuple[torch.Tensor, dict[str, torch.Tensor]]]:
    """Yield ``(rows, block_inputs)``: ``inputs`` cut into the blocks :func:`plan_blocks` chooses.

    Per-token tensors (``[rows, tokens]``, like ``attention_mask``) are cut to the block's rows
    and to the columns any of them attends; per-row tensors to the rows; others pass unchanged.

    Args:
        inputs: a tokenized batch with an ``attention_mask``.
        block_cost: see :func:`plan_blocks`.
    """
    mask = inputs["attention_mask"]
    lengths = mask.sum(1).tolist()
    for rows in plan_blocks(lengths, block_cost):
        index = torch.tensor(rows, device=mask.device)
        used = mask[index].any(0).nonzero().flatten().tolist()
        columns = slice(used[0], used[-1] + 1) if used else slice(0, 0)
        block = {}
        for key, value in inputs.items():
            if value.dim() >= 2 and value.shape[:2] == mask.shape:
                block[key] = value[index][:, columns]
            elif value.dim() >= 1 and value.shape[0] == mask.shape[0]:
                block[key] = value[index]
            else:
                block[key] = value
        yield index, block


def blockwise(forward, inputs: dict[str, torch.Tensor], block_cost: int = CPU_BLOCK_COST) -> torch.Tensor:
    """``forward(inputs)`` computed block by block, rows back in their original order.

    ``forward`` maps a tokenized batch to one tensor with a leading row dimension (logits,
    pooled states); the result equals ``forward(inputs)`` up to floating-point summation order.
    """
    parts, rows = [], []
    for index, block in length_blocks(inputs, block_cost):
        parts.append(forward(block))
        rows.append(index)
    if len(parts) == 1:
        return parts[0][torch.argsort(rows[0])]
    return torch.cat(parts)[torch.argsort(torch.cat(rows))]
