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


def _groups(group_index: torch.Tensor) -> list[torch.Tensor]:
    """Index tensors of the rows belonging to each group, in group order."""
    n_groups = int(group_index.max().item()) + 1 if group_index.numel() else 0
    return [torch.nonzero(group_index == g, as_tuple=True)[0] for g in range(n_groups)]


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
    if name == "bce":
        return F.binary_cross_entropy_with_logits(logits, labels)
    if name not in LOSSES:
        raise ConfigError(f"unknown loss {name!r}; choose one of {', '.join(LOSSES)}")
    terms = []
    for rows in _groups(group_index):
        g_logits, g_labels = logits[rows], labels[rows]
        pos, neg = g_labels > 0.5, g_labels <= 0.5
        if not pos.any() or not neg.any():
            continue
        if name == "listwise":
            log_probs = g_logits - torch.logsumexp(g_logits, dim=0)
            terms.append(-log_probs[pos].mean())
        else:
            diff = g_logits[pos][:, None] - g_logits[neg][None, :]
            terms.append(-F.logsigmoid(diff).mean())
    if not terms:
        return F.binary_cross_entropy_with_logits(logits, labels)
    return torch.stack(terms).mean()
