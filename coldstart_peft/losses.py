"""Training losses over scored groups (one user context, several items).

``bce`` is the seed's pointwise objective; ``listwise`` (softmax cross-entropy of the positive
against the other items of its group) and ``bpr`` (pairwise) compare items of the same
context, which is what a ranking metric rewards.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from coldstart_peft.errors import ConfigError

LOSSES = ("bce", "listwise", "bpr")


def ranking_loss(name: str, logits: torch.Tensor, labels: torch.Tensor, group_index: torch.Tensor) -> torch.Tensor:
    """Compute loss ``name`` for flat ``logits`` whose rows belong to groups.

    Args:
        name: ``bce``, ``listwise`` or ``bpr``.
        logits: one score per (context, item) row, shape ``(rows,)``.
        labels: 1.0 positive, 0.0 negative, shape ``(rows,)``.
        group_index: which group each row belongs to, ``0..n_groups-1``.

    Returns:
        A scalar loss, the mean over groups. A group without both a positive and a negative
        has nothing to rank, so under ``listwise``/``bpr`` it contributes the BCE of its own
        rows instead: a file of independent labeled pairs (groups of one) trains pointwise, and
        a batch mixing such groups with rankable ones trains on all of them.
    """
    logits = logits.float()
    labels = labels.float()
    if name == "bce":
        return F.binary_cross_entropy_with_logits(logits, labels)
    if name not in LOSSES:
        raise ConfigError(f"unknown loss {name!r}; choose one of {', '.join(LOSSES)}")
    # Row-by-row membership instead of a loop over groups: no host sync, the same on any device.
    same = group_index[:, None] == group_index[None, :]
    pos, neg = labels > 0.5, labels <= 0.5
    n_pos = (same & pos[None, :]).sum(1).float()  # per row: positives / negatives in its group
    n_neg = (same & neg[None, :]).sum(1).float()
    qualifies = (n_pos > 0) & (n_neg > 0)
    group_size = same.sum(1).float()
    n_groups = (1.0 / group_size).sum()  # each group's rows add up to one
    pointwise = F.binary_cross_entropy_with_logits(logits, labels, reduction="none") / group_size
    if name == "listwise":
        log_probs = logits - torch.logsumexp(logits[None, :].masked_fill(~same, float("-inf")), dim=1)
        per_row = torch.where(pos & qualifies, -log_probs / n_pos.clamp(min=1.0), torch.zeros_like(logits))
    else:
        pairs = same & pos[:, None] & neg[None, :]
        terms = -F.logsigmoid(logits[:, None] - logits[None, :])
        per_row = (terms * pairs).sum(1) / (n_pos * n_neg).clamp(min=1.0)
        per_row = torch.where(qualifies, per_row, torch.zeros_like(per_row))
    per_row = torch.where(qualifies, per_row, pointwise)
    return per_row.sum() / n_groups
