"""Recommender: sessions, exclusion of seen items, reranking, domains, new items, the index cache."""

from __future__ import annotations

import pytest
from _retrieval_fakes import ColourEncoder, PriceReranker, colour_catalog, save_tiny_adapter, tiny_bi_encoder

from coldstart_peft import ConfigError, Recommender, StaleIndexError, UnknownNameError, save_adapter
from coldstart_peft.data import TextSerializer
from coldstart_peft.data.schema import Item
from coldstart_peft.retrieval import ItemIndex


def make_recommender(reranker=None, n_candidates=12):
    encoder, catalog = ColourEncoder(), colour_catalog()
    index = ItemIndex(encoder, "fp")
    serializer = TextSerializer()
    index.add({i: serializer.item(item) for i, item in catalog.items()})
    return Recommender(encoder, index, catalog, reranker=reranker, n_candidates=n_candidates)


def colours(results):
    return {r.item.title.split()[0] for r in results}


def test_update_changes_the_next_recommendation():
    rec = make_recommender()
    rec.update("u1", "I10")  # blue lipstick
    assert colours(rec.recommend(user="u1", k=5)) == {"blue"}
    for _ in range(3):  # the serializer keeps the most recent clicks, so green takes over
        rec.update("u1", "green soap")
    assert rec.session("u1")[-1] == "green soap"
    assert colours(rec.recommend(user="u1", k=5)) == {"green"}
    assert "Recently bought" in rec.user_text(user="u1")
    rec.forget("u1")
    assert rec.session("u1") == []


def test_seen_items_are_excluded_unless_asked():
    rec = make_recommender()
    history = ["I00", "I01", "I02"]
    results = rec.recommend(history, k=3)  # the three red items not yet seen
    assert not {r.item_id for r in results} & set(history)
    assert colours(results) == {"red"} and len(results) == 3
    assert set(history) <= {r.item_id for r in rec.recommend(history, k=6, exclude_seen=False)}
    rec.update("u", "I03")
    assert "I03" not in {r.item_id for r in rec.recommend(user="u", k=6)}


def test_rerank_orders_the_retrieved_candidates_by_the_reranker():
    reranker = PriceReranker()
    rec = make_recommender(reranker=reranker, n_candidates=12)
    results = rec.recommend(["I70"], k=5)  # grey: grey items first, then the rest
    users, items = reranker.pairs[-1]
    assert len(items) == 12 and set(users) == {rec.user_text(["I70"])}
    scores = [r.score for r in results]
    assert scores == sorted(scores, reverse=True)
    retrieved = {i for i, _ in rec.index.search(rec.encoder.encode([users[0]])[0], n=12, exclude={"I70"})}
    assert {r.item_id for r in results} <= retrieved
    assert [r.score for r in results] == [-r.item.price for r in results]
    assert results != rec.recommend(["I70"], k=5, rerank=False)


class DomainRouter(PriceReranker):
    """Scores like :class:`PriceReranker` and records the domains it was given (as an adapter bank would)."""

    def score(self, user_texts, item_texts, domains=None):
        self.domains = list(domains)
        return super().score(user_texts, item_texts)


def test_domain_restricts_results_and_is_passed_to_a_routing_reranker():
    rec = make_recommender(reranker=DomainRouter())
    results = rec.recommend(["I00"], k=4, domain="Soap")
    assert {r.item.domain for r in results} == {"Soap"}
    assert set(rec.reranker.domains) == {"Soap"}
    mixed = rec.recommend(["I00"], k=4)
    assert rec.reranker.domains == [rec.catalog[i].domain for i in _candidates(rec, ["I00"])]
    assert len({r.item.domain for r in mixed}) > 1
    with pytest.raises(UnknownNameError, match="Soap"):
        rec.recommend(["I00"], domain="Shoes")


def _candidates(rec, history):
    query = rec.encoder.encode([rec.user_text(history)])[0]
    return [i for i, _ in rec.index.search(query, n=rec.n_candidates, exclude=set(history))]


def test_search_and_free_text_history():
    rec = make_recommender()
    assert colours(rec.search("pink", k=6)) == {"pink"}
    assert colours(rec.recommend(["a gold necklace"], k=3)) == {"gold"}
    with pytest.raises(ConfigError):
        rec.recommend(["I00"], k=0)


def test_new_item_is_recommendable_at_once():
    rec = make_recommender()
    assert rec.add_items([Item("NEW", title="teal violet lipstick", price=3.0)]) == 1
    assert "NEW" in {r.item_id for r in rec.search("anything without colour", k=49)}


def test_load_caches_the_index_and_rebuilds_it_for_new_weights(tmp_path, tiny_base):
    folder = save_tiny_adapter(tiny_base, tmp_path / "adapter")
    rec = Recommender.load(folder, catalog=colour_catalog(), progress=False)
    cached = folder / "index" / "catalog.safetensors"
    assert cached.is_file() and len(rec.index) == 48
    first = rec.recommend(["I00"], k=3)
    again = Recommender.load(folder, catalog=colour_catalog(), progress=False)
    assert [r.item_id for r in again.recommend(["I00"], k=3)] == [r.item_id for r in first]
    explicit = tmp_path / "explicit.safetensors"
    rec.index.save(explicit)
    scorer = tiny_bi_encoder(tiny_base)
    scorer.log_scale.data += 1.0
    save_adapter(scorer, folder)  # retrained: the old cache is gone with the old folder, explicit file is stale
    with pytest.raises(StaleIndexError):
        Recommender.load(folder, catalog=colour_catalog(), index=explicit, progress=False)
    assert len(Recommender.load(folder, catalog=colour_catalog(), progress=False).index) == 48


def test_load_refuses_a_cross_encoder_as_retriever(tmp_path, tiny_base):
    from _retrieval_fakes import HOST

    from coldstart_peft import apply_method, build_scorer, make_method

    scorer = build_scorer("cross-encoder", tiny_base, {"max_length": 48}, host=HOST)
    apply_method(scorer, make_method("lora", {"r": 2}, host=HOST))
    folder = save_adapter(scorer, tmp_path / "cross")
    with pytest.raises(ConfigError, match="reranker"):
        Recommender.load(folder, catalog=colour_catalog(), progress=False)
