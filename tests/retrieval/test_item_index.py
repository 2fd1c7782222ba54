"""ItemIndex: save/load round trip, staleness refusal, incremental adds, exclusion and masks."""

from __future__ import annotations

import pytest
import torch
from _retrieval_fakes import ColourEncoder, colour_catalog, save_tiny_adapter, tiny_bi_encoder

from coldstart_peft import StaleIndexError, adapter_fingerprint, save_adapter
from coldstart_peft.data import TextSerializer
from coldstart_peft.retrieval import ItemIndex


def catalog_texts():
    serializer = TextSerializer()
    return {i: serializer.item(item) for i, item in colour_catalog().items()}


def test_round_trip_keeps_ids_embeddings_and_results(tmp_path, tiny_base):
    encoder = tiny_bi_encoder(tiny_base)
    index = ItemIndex(encoder, "fp-1")
    assert index.add(catalog_texts()) == 48
    path = index.save(tmp_path / "items.safetensors")
    loaded = ItemIndex.load(path, encoder, "fp-1")
    assert loaded.ids == index.ids
    assert torch.equal(loaded.embeddings, index.embeddings)
    query = encoder.encode(["clicked red lipstick"])[0]
    before, after = index.search(query, n=10), loaded.search(query, n=10)
    assert [i for i, _ in after] == [i for i, _ in before]
    assert [s for _, s in after] == pytest.approx([s for _, s in before], rel=1e-5)
    # Unchanged texts are not encoded again after loading.
    assert loaded.add(catalog_texts()) == 0


def test_index_made_with_other_weights_is_refused(tmp_path):
    index = ItemIndex(ColourEncoder(), "fp-old")
    index.add(catalog_texts())
    path = index.save(tmp_path / "items.safetensors")
    with pytest.raises(StaleIndexError, match="fp-old"):
        ItemIndex.load(path, ColourEncoder(), "fp-new")


def test_adapter_fingerprint_changes_when_weights_change(tmp_path, tiny_base):
    folder = save_tiny_adapter(tiny_base, tmp_path / "adapter")
    before = adapter_fingerprint(folder)
    (folder / "index").mkdir()
    (folder / "index" / "notes.txt").write_text("caches next to the adapter do not count")
    assert adapter_fingerprint(folder) == before
    scorer = tiny_bi_encoder(tiny_base)
    with torch.no_grad():
        scorer.log_scale.add_(1.0)
    save_adapter(scorer, folder)
    assert adapter_fingerprint(folder) != before


def test_added_item_is_retrievable_at_once():
    encoder = ColourEncoder()
    index = ItemIndex(encoder, "fp")
    index.add(catalog_texts())
    query = encoder.encode(["teal"])[0]  # no colour word: every item scores the same
    assert "NEW" not in [i for i, _ in index.search(query, n=5)]
    assert index.add({"NEW": "teal lipstick"}) == 1
    assert index.search(query, n=1)[0][0] == "NEW"
    assert len(index) == 49 and "NEW" in index


def test_changed_text_is_re_encoded_in_place():
    encoder = ColourEncoder()
    index = ItemIndex(encoder, "fp")
    index.add({"A": "red soap", "B": "blue soap"})
    assert index.add({"A": "red soap"}) == 0
    assert index.add({"A": "blue soap"}) == 1
    assert len(index) == 2
    assert torch.allclose(index.embeddings[index.row("A")], index.embeddings[index.row("B")])


def test_search_excludes_and_restricts_and_sync_drops_items():
    encoder = ColourEncoder()
    index = ItemIndex(encoder, "fp")
    texts = catalog_texts()
    index.add(texts)
    query = encoder.encode(["red"])[0]
    top = [i for i, _ in index.search(query, n=6)]
    assert set(top) == {i for i in texts if i.startswith("I0")}  # the six red items
    kept = [i for i, _ in index.search(query, n=6, exclude={"I00", "I01"})]
    assert "I00" not in kept and "I01" not in kept
    within = index.mask(["I30", "I31"])
    assert {i for i, _ in index.search(query, n=10, within=within)} == {"I30", "I31"}
    assert index.sync({i: t for i, t in texts.items() if i != "I00"}) == 1
    assert "I00" not in index and len(index) == 47


def test_scores_are_the_scaled_inner_products():
    encoder = ColourEncoder()
    index = ItemIndex(encoder, "fp")
    index.add({"A": "red soap", "B": "red blue soap"})
    query = encoder.encode(["red"])[0]
    hits = dict(index.search(query, n=2))
    assert hits["A"] == pytest.approx(2.0 * float(query @ encoder.encode(["red soap"])[0]))
