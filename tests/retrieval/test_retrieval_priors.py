"""Retrieval ranks by the model that was trained: encoder plus priors, the same order as ``scorer.score``."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _retrieval_fakes import colour_catalog, tiny_bi_encoder

from coldstart_peft import Recommender, TrainGroup
from coldstart_peft.data import TextSerializer
from coldstart_peft.evaluation import evaluate_full_catalog
from coldstart_peft.priors import Priors
from coldstart_peft.retrieval import ItemIndex


def _with_priors(tiny_base, catalog):
    scorer = tiny_bi_encoder(tiny_base)
    scorer.precision = "fp32"
    scorer.attach_priors(Priors())
    ids = sorted(catalog)
    text = TextSerializer()
    # I05 is bought a lot, and always right after I10: popularity and co-occurrence both point at it.
    groups = [TrainGroup("u", [text.item(catalog["I05"])], [1.0], item_ids=["I05"], context_ids=["I10"])] * 12
    groups += [TrainGroup("u", [text.item(catalog[i])], [1.0], item_ids=[i], context_ids=[ids[0]]) for i in ids]
    scorer.priors.fit(groups)
    with torch.no_grad():
        scorer.priors.weight.copy_(torch.tensor([0.8, 3.0, 1.5, 2.5]))
        scorer.bias.fill_(-0.7)  # as pointwise training leaves it: scores must still match scorer.score
    return scorer


def test_recommend_returns_the_order_of_scorer_score_priors_included(tiny_base):
    catalog = colour_catalog()
    scorer = _with_priors(tiny_base, catalog)
    serializer = TextSerializer()
    index = ItemIndex(scorer, "fp")
    index.add({i: serializer.item(item) for i, item in catalog.items()})
    rec = Recommender(scorer, index, catalog)
    history = ["I10", "I21"]
    results = rec.recommend(history, k=len(catalog))
    candidates = [i for i in catalog if i not in history]
    user = rec.user_text(history)
    texts = [serializer.item(catalog[i]) for i in candidates]
    exact = scorer.score([user] * len(candidates), texts, context_ids=[history] * len(candidates), item_ids=candidates)
    expected = [candidates[j] for j in np.argsort(-exact, kind="stable")]
    assert [r.item_id for r in results] == expected
    np.testing.assert_allclose([r.score for r in results], np.sort(exact)[::-1], rtol=1e-5, atol=1e-5)
    encoder_only = scorer.score_texts([user] * len(candidates), texts)
    assert [candidates[j] for j in np.argsort(-encoder_only, kind="stable")] != expected, "the priors change the order"
    assert results[0].item_id == "I05"


def test_full_catalog_evaluation_uses_the_priors_unless_told_not_to(tiny_base):
    from coldstart_peft.data import cold_user_split
    from coldstart_peft.demo import demo_dataset
    from coldstart_peft.data.pairs import training_groups

    split = cold_user_split(demo_dataset(n_items=80, n_users=200), k=3, max_test_users=20)
    scorer = tiny_bi_encoder(tiny_base)
    scorer.precision = "fp32"
    scorer.attach_priors(Priors(["popularity", "cooccurrence"]))
    scorer.priors.fit(training_groups(split, n_negatives=1))
    with_priors = evaluate_full_catalog(scorer, split)
    alone = evaluate_full_catalog(scorer, split, priors=False)
    assert with_priors["priors"] == ["popularity", "cooccurrence"] and alone["priors"] == []
    assert with_priors["retrieval"]["ndcg@10"]["mean"] != alone["retrieval"]["ndcg@10"]["mean"]


def test_ann_search_with_priors_returns_the_exact_top_k(tiny_base, monkeypatch):
    pytest.importorskip("faiss")
    from coldstart_peft.retrieval import ann_search

    scored = []  # rows scored exactly per call: fewer than the catalog means the bound settled it
    exact_rows = ann_search.exact_rows

    def counting(index, query, rows, *args):
        scored.append(len(rows))
        return exact_rows(index, query, rows, *args)

    monkeypatch.setattr(ann_search, "exact_rows", counting)
    catalog = colour_catalog()
    scorer = _with_priors(tiny_base, catalog)
    texts = {i: TextSerializer().item(item) for i, item in catalog.items()}
    recommenders = {}
    for kind in ("exact", "ann"):
        index = ItemIndex(scorer, "fp", kind=kind)
        index.add(texts)
        recommenders[kind] = Recommender(scorer, index, catalog)
    history = ["I10", "I21"]
    exact, approximate = (recommenders[kind].recommend(history, k=5) for kind in ("exact", "ann"))
    assert recommenders["ann"].index._searcher is not None and scored and max(scored) < len(catalog) - len(history)
    assert [r.item_id for r in approximate] == [r.item_id for r in exact] and exact[0].item_id == "I05"
    np.testing.assert_allclose([r.score for r in approximate], [r.score for r in exact], rtol=1e-5, atol=1e-5)
