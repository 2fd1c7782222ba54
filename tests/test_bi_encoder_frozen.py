"""The bi-encoder's ``frozen()`` block: each distinct text embedded once, same scores as without it."""

from __future__ import annotations

import numpy as np
import torch

from coldstart_peft import RankingCase, build_scorer, create_host
from coldstart_peft.evaluation.ranking import score_cases

HOST = create_host(load_entrypoints=False)


def test_evaluation_embeds_each_text_once_and_scores_match(tiny_base):
    scorer = build_scorer("bi-encoder", tiny_base, {"max_length": 32}, host=HOST)
    scorer.precision = "fp32"
    catalog = [f"item {i} shade {i % 7}" for i in range(12)]
    cases = [RankingCase(f"user {u} likes shade {u % 7}", catalog[u % 3 :][:8], 0) for u in range(6)]
    plain = [scorer.score([c.user_text] * len(c.candidate_texts), c.candidate_texts) for c in cases]

    embedded: list[str] = []
    encode = scorer._encode

    def counting(texts, batch_size, progress):
        embedded.extend(texts)
        return encode(texts, batch_size, progress)

    scorer._encode = counting
    reused = score_cases(scorer.score, cases, batch_size=8)  # chunks split cases: reuse must cross calls
    assert sorted(embedded) == sorted({*catalog[:10], *(c.user_text for c in cases)}), "each text exactly once"
    for a, b in zip(plain, reused):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)

    embedded.clear()
    scorer.score(["user 0 likes shade 0"], [catalog[0]])
    assert embedded, "outside evaluation nothing is kept: weights may change between calls"


def test_items_padded_in_length_blocks_give_the_loss_of_one_padded_batch(tiny_base, toy_task, monkeypatch):
    """Blocks change how much padding is computed, never the loss or its gradient."""
    from coldstart_peft import build_scorer, create_host
    from coldstart_peft_plugins import bi_encoder

    scorer = build_scorer("bi-encoder", tiny_base, {"max_length": 32}, host=create_host(load_entrypoints=False))
    scorer.eval()
    groups = toy_task[0][:24]  # 96 item texts: three blocks of 32
    results = []
    for block in (bi_encoder.TRAIN_BLOCK, 10_000):
        monkeypatch.setattr(bi_encoder, "TRAIN_BLOCK", block)
        batch = scorer.collate(groups)
        scorer.zero_grad()
        loss = scorer.compute_loss(batch)
        loss.backward()
        grad = scorer.log_scale.grad.clone()
        results.append((sum(1 for k in batch if k.endswith(":input_ids")), loss.detach(), grad))
    (blocked, loss_a, grad_a), (single, loss_b, grad_b) = results
    assert blocked == 1 + 3 and single == 1 + 1, "users in one block, items in three vs one"
    torch.testing.assert_close(loss_a, loss_b)
    torch.testing.assert_close(grad_a, grad_b)
