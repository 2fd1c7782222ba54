"""The bi-encoder's ``frozen()`` block: each distinct text embedded once, same scores as without it."""

from __future__ import annotations

import numpy as np

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
