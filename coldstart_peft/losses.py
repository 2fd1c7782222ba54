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
        A scalar loss. Groups without both a positive and a negative contribute nothing to
        ``listwise``/``bpr``; if no group qualifies, those fall back to BCE so a batch of
        pointwise pairs still trains.
    """
    logits = logits.float()
    labels = labels.float()
    bce = F.binary_cross_entropy_with_logits(logits, labels)
    if name == "bce":
        return bce
    if name not in LOSSES:
        raise ConfigError(f"unknown loss {name!r}; choose one of {', '.join(LOSSES)}")
    # Row-by-row membership instead of a loop over groups: no host sync, the same on any device.
    same = group_index[:, None] == group_index[None, :]
    pos, neg = labels > 0.5, labels <= 0.5
    n_pos = (same & pos[None, :]).sum(1).float()  # per row: positives / negatives in its group
    n_neg = (same & neg[None, :]).sum(1).float()
    qualifies = (n_pos > 0) & (n_neg > 0)
    n_groups = (qualifies.float() / same.sum(1).float()).sum()  # each group's rows add up to one
    if name == "listwise":
        log_probs = logits - torch.logsumexp(logits[None, :].masked_fill(~same, float("-inf")), dim=1)
        per_row = torch.where(pos & qualifies, -log_probs / n_pos.clamp(min=1.0), torch.zeros_like(logits))
    else:
        pairs = same & pos[:, None] & neg[None, :]
        terms = -F.logsigmoid(logits[:, None] - logits[None, :])
        per_row = (terms * pairs).sum(1) / (n_pos * n_neg).clamp(min=1.0)
        per_row = torch.where(qualifies, per_row, torch.zeros_like(per_row))
    return torch.where(n_groups > 0, per_row.sum() / n_groups.clamp(min=1e-12), bce)
