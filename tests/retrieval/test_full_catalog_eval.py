"""Full-catalog evaluation agrees with ranking every item through the plain ranking metrics."""

from __future__ import annotations

import numpy as np
import pytest
from _retrieval_fakes import COLOURS, KINDS, ColourEncoder, PriceReranker, colour_catalog

from coldstart_peft.data import TextSerializer, cold_user_split
from coldstart_peft.data.schema import Dataset, Interaction
from coldstart_peft.evaluation import evaluate_full_catalog, ranking_metrics


def colour_world() -> Dataset:
    """Users who click items of one colour, so a colour-reading retriever ranks well."""
    rng = np.random.default_rng(0)
    items = colour_catalog()
    interactions = []
    for u in range(200):
        colour = int(rng.integers(len(COLOURS)))
        picks = rng.permutation(len(KINDS))[:4] if u % 3 else rng.permutation(len(items))[:4]
        ids = [f"I{colour}{k}" for k in picks] if u % 3 else [sorted(items)[i] for i in picks]
        interactions += [Interaction(f"U{u}", item_id, float(t)) for t, item_id in enumerate(ids)]
    return Dataset("colours", items, interactions).validate()


def brute_force(encoder, split, exclude_seen=True):
    """Score every item for every test user and rank through ``ranking_metrics``."""
    serializer = TextSerializer()
    dataset = split.dataset
    ids = sorted(dataset.items)
    items = encoder.encode([serializer.item(dataset.items[i]) for i in ids])
    rows, targets = [], []
    for record in split.test:
        user = encoder.encode([serializer.user([dataset.items[i] for i in record.context])])[0]
        scores = (float(encoder.scale) * items @ user).numpy().astype(np.float64)
        keep = [j for j, i in enumerate(ids) if not (exclude_seen and i in record.context and i != record.target)]
        rows.append(scores[keep])
        targets.append(keep.index(ids.index(record.target)))
    return {k: float(np.mean(v)) for k, v in ranking_metrics(np.array(rows), targets, ks=(10, 20)).items()}


@pytest.mark.parametrize("exclude_seen", [True, False])
def test_matches_ranking_every_item(exclude_seen):
    split = cold_user_split(colour_world(), k=3, n_negatives=5, seed=0)
    encoder = ColourEncoder()
    report = evaluate_full_catalog(encoder, split, ks=(10, 20), exclude_seen=exclude_seen)
    expected = brute_force(encoder, split, exclude_seen)
    assert report["n_items"] == 48 and report["n_cases"] == len(split.test)
    for k in (10, 20):
        assert report["retrieval"][f"recall@{k}"]["mean"] == pytest.approx(expected[f"hr@{k}"])
        assert report["retrieval"][f"ndcg@{k}"]["mean"] == pytest.approx(expected[f"ndcg@{k}"])
    assert report["retrieval"]["mrr"]["mean"] == pytest.approx(expected["mrr"])
    assert report["retrieval"]["recall@10"]["mean"] > 10 / 48  # colour users make it better than chance


class Oracle:
    """Knows each user's target: scores it 1 and everything else 0."""

    def __init__(self, split):
        serializer = TextSerializer()
        items = split.dataset.items
        self.target_of = {serializer.user([items[i] for i in r.context]): serializer.item(items[r.target]) for r in split.test}

    def score(self, user_texts, item_texts):
        return np.array([float(self.target_of.get(u) == t) for u, t in zip(user_texts, item_texts)])


def test_rerank_keeps_ranks_outside_the_candidates_and_reorders_inside():
    split = cold_user_split(colour_world(), k=3, n_negatives=5, seed=0)
    encoder = ColourEncoder()
    report = evaluate_full_catalog(encoder, split, reranker=Oracle(split), n_candidates=8, ks=(1, 8, 20))
    retrieval, rerank = report["retrieval"], report["rerank"]
    # The oracle puts every target it is shown first, so Recall@1 becomes retrieval's Recall@8 ...
    assert rerank["recall@1"]["mean"] == pytest.approx(retrieval["recall@8"]["mean"])
    # ... and targets it never saw keep their retrieval rank.
    assert rerank["recall@20"]["mean"] == pytest.approx(retrieval["recall@20"]["mean"])
    assert 0 < report["reranked_cases"] <= report["n_cases"]
    neutral = evaluate_full_catalog(encoder, split, reranker=PriceReranker(), n_candidates=8, ks=(8,))
    assert neutral["rerank"]["recall@8"]["mean"] == pytest.approx(neutral["retrieval"]["recall@8"]["mean"])
