"""Refit a scorer's prior weights on validation cases, the fine-tuned model held fixed.

Training learns the prior weights through a softmax over the batch's items, whose negatives
are mostly other users' positives; ranking is judged against candidates drawn another way
(uniformly in this library's splits). A handful of weights is cheap to refit on validation
cases scored exactly like test cases, the way the hybrid baseline tunes its λ: a softmax
cross-entropy over each case's candidates, minimised by L-BFGS over ``model + w·features``.
The model's own logit keeps weight 1 and is untouched (a free model weight fitted to 0.97 on
Beauty, and on a model that ranks worse than chance it would flip sign).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from coldstart_peft.errors import ConfigError, TrainingDivergedError
from coldstart_peft.evaluation.ranking import score_cases
from coldstart_peft.examples import RankingCase
from coldstart_peft.scorer import Scorer


def calibrate_priors(
    scorer: Scorer, cases: Sequence[RankingCase], max_iter: int = 100, progress: bool = False
) -> dict[str, float]:
    """Set the scorer's prior weights to those that rank ``cases`` best (softmax cross-entropy).

    Args:
        scorer: a trained scorer with priors attached (:meth:`Scorer.attach_priors`).
        cases: validation cases (never test cases), each with its positive at ``target``.
        max_iter: L-BFGS iterations.
        progress: show a bar while the cases are scored.

    Returns:
        ``{feature: weight}`` as set on the scorer's priors; empty when it has none.

    Raises:
        ConfigError: ``cases`` is empty.
        TrainingDivergedError: the model scores the cases with NaN or infinite values.
    """
    priors = scorer.priors
    if priors is None:
        return {}
    if not cases:
        raise ConfigError("calibrate_priors needs validation cases; pass some or skip calibration")
    model = score_cases(scorer.score_texts, cases, progress=progress)
    if not all(np.isfinite(row).all() for row in model):
        raise TrainingDivergedError(
            "calibration found NaN or infinite scores: the trained model is broken. Train again with a lower learning rate"
        )
    features = priors.pairs(
        [c.user_text for c in cases for _ in c.candidate_texts],
        [t for c in cases for t in c.candidate_texts],
        [c.context_ids for c in cases for _ in c.candidate_texts],
        [i for c in cases for i in (c.candidate_ids or [None] * len(c.candidate_texts))],
    )
    width = max(len(c.candidate_texts) for c in cases)
    x = torch.zeros(len(cases), width, 1 + features.shape[1])
    mask = torch.zeros(len(cases), width, dtype=torch.bool)
    offset = 0
    for row, case in enumerate(cases):
        n = len(case.candidate_texts)
        x[row, :n, 0] = torch.from_numpy(np.asarray(model[row], dtype=np.float32))
        x[row, :n, 1:] = features[offset : offset + n]
        mask[row, :n] = True
        offset += n
    target = torch.tensor([c.target for c in cases])
    model_logits = x[..., 0]
    coef = priors.weight.detach().float().cpu().clone().requires_grad_(True)
    optimizer = torch.optim.LBFGS([coef], max_iter=max_iter, line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        logits = (model_logits + x[..., 1:] @ coef).masked_fill(~mask, float("-inf"))
        loss = torch.nn.functional.cross_entropy(logits, target)
        loss.backward()
        return loss

    optimizer.step(closure)
    with torch.no_grad():
        priors.weight.copy_(coef.detach().to(priors.weight.device, priors.weight.dtype))
    return priors.named_weights()
