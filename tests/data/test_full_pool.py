"""Full-pool ranking: one protocol for baselines and bi-encoders, known items excluded, checked by hand."""

from __future__ import annotations

import zlib

import numpy as np
import pytest
import torch

from coldstart_peft.data import TextSerializer
from coldstart_peft.data.cold_start import cold_item_split, cold_user_split
from coldstart_peft.demo import demo_dataset
from coldstart_peft.evaluation import evaluate_full_catalog
from coldstart_peft.evaluation.baselines import Baseline, ZeroShotBaseline, make_baseline
from coldstart_peft.evaluation.full_pool import evaluate_baseline_full_pool, known_items
from coldstart_peft.examples import RankingCase


class _HashEncoder:
    """A two-tower stand-in: each text's embedding is a fixed random unit vector seeded by the text."""

    scale = torch.tensor(3.0)

    def encode(self, texts, batch_size=128, progress=False):
        rows = [np.random.default_rng(zlib.crc32(t.encode())).standard_normal(16) for t in texts]
        return torch.nn.functional.normalize(torch.tensor(np.array(rows), dtype=torch.float32), dim=-1)


@pytest.fixture(scope="module")
def split():
    return cold_user_split(demo_dataset(n_items=80, n_users=200), k=3, max_test_users=15)


def _hand_ndcg10(baseline, split) -> float:
    """Each user's target among every catalog item but its context, scored one case at a time."""
    serializer, items = TextSerializer(), split.dataset.items
    values = []
    for record, case in zip(split.test, split.ranking_cases("test")):
        ids = [i for i in sorted(items) if i == record.target or i not in record.context]
        full = RankingCase(case.user_text, [serializer.item(items[i]) for i in ids], ids.index(record.target),
                           candidate_ids=ids, context_ids=case.context_ids)  # fmt: skip
        scores = baseline.score_case(full)
        positive = scores[full.target]
        better, ties = int((scores > positive).sum()), int((scores == positive).sum()) - 1
        # Ties broken at random: average the gain over the ranks the target may take.
        values.append(np.mean([1 / np.log2(1 + r) if r <= 10 else 0.0 for r in range(better + 1, better + ties + 2)]))
    return float(np.mean(values))


@pytest.mark.parametrize("name", ["popularity", "hybrid"])
def test_full_pool_metric_equals_a_brute_force_computation(split, name):
    baseline = make_baseline(name).fit(split)
    report = evaluate_baseline_full_pool(baseline, split, batch_size=4)  # batches cut through the users
    assert report["n_cases"] == len(split.test) and report["n_items"] == len(split.dataset.items)
    assert report["retrieval"]["ndcg@10"]["mean"] == pytest.approx(_hand_ndcg10(baseline, split), abs=1e-12)
    assert set(report["retrieval"]) == {"recall@10", "recall@20", "ndcg@10", "ndcg@20", "mrr"}


def test_known_items_are_left_out_but_the_target_never(split):
    record = split.test[0]
    popularity = make_baseline("popularity").fit(split)
    # Make the user's context the most popular items of all: left in, they would push the target down.
    for rank, item in enumerate(record.context):
        popularity.counts[item] = 10_000 + rank
    excluded = evaluate_baseline_full_pool(popularity, split)["retrieval"]["mrr"]["mean"]
    kept = RankingCase("u", ["t"] * len(split.dataset.items), candidate_ids=sorted(split.dataset.items))
    best_context = popularity.score_pool([kept], sorted(split.dataset.items), kept.candidate_texts)[0].max()
    assert best_context >= 10_000 and excluded < 1.0
    assert known_items(record) == set(record.context) - {record.target}
    repeat = type(record)(record.user_id, [*record.context, record.target], record.target, [], "cold-user", record.domain)
    assert record.target not in known_items(repeat)
    popularity.counts[record.target] = 1_000  # above all but the excluded context: rank 1 once they are out
    only = type(split)(split.kind, split.dataset, split.config, split.train_users, [], [], test=[record])
    assert evaluate_baseline_full_pool(popularity, only)["retrieval"]["mrr"]["mean"] == 1.0


@pytest.mark.parametrize("name", ["popularity", "tfidf", "hybrid", "cooccurrence", "hybrid+cooc", "zero-shot"])
def test_vectorised_pool_scores_equal_the_per_case_fallback(split, name, tiny_base):
    baseline = ZeroShotBaseline(backbone=tiny_base, bf16=False) if name == "zero-shot" else make_baseline(name)
    baseline.fit(split)
    cases = split.ranking_cases("test")[:5]
    pool = sorted(split.dataset.items)
    texts = [TextSerializer().item(split.dataset.items[i]) for i in pool]
    vectorised = baseline.score_pool(cases, pool, texts)
    assert type(baseline).score_pool is not Baseline.score_pool, "the baseline has its own batched scoring"
    np.testing.assert_allclose(vectorised, Baseline.score_pool(baseline, cases, pool, texts), rtol=1e-5, atol=1e-6)
    assert vectorised.shape == (5, len(pool)) and np.ptp(vectorised) > 0


class _EncoderAsBaseline(Baseline):
    """A two-tower encoder's similarity, scored through the baselines' full-pool path."""

    def __init__(self, encoder):
        self.encoder = encoder

    def score_pool(self, cases, item_ids, item_texts):
        users, items = self.encoder.encode([c.user_text for c in cases]), self.encoder.encode(list(item_texts))
        return (self.encoder.scale * users @ items.T).numpy()


def test_bi_encoders_and_baselines_rank_the_same_pool_the_same_way():
    split = cold_item_split(demo_dataset(n_items=120, n_users=200), k=3, max_test_users=20)
    pool = split.candidate_pool()
    assert pool == sorted(split.excluded_items) and all(r.target in pool for r in split.test)
    encoder = _HashEncoder()
    with torch.no_grad():
        direct = evaluate_full_catalog(encoder, split, items=pool, ks=(10, 20))
    through = evaluate_baseline_full_pool(_EncoderAsBaseline(encoder), split)
    assert direct["n_items"] == through["n_items"] == len(pool) < len(split.dataset.items)
    for metric in ("recall@10", "ndcg@10", "ndcg@20", "mrr"):
        assert direct["retrieval"][metric] == pytest.approx(through["retrieval"][metric], abs=1e-6)
