"""The prior component: fitted from training users only, keyed by item id, independent of the
text format, trained and saved beside any scorer."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from coldstart_peft import TrainConfig, TrainGroup, apply_method, build_scorer, create_host, load_adapter, save_adapter, train
from coldstart_peft.data.cold_start import cold_user_split
from coldstart_peft.data.pairs import training_groups
from coldstart_peft.data.text import TextConfig, TextSerializer
from coldstart_peft.demo import demo_dataset
from coldstart_peft.errors import OutdatedAdapterError, PluginError
from coldstart_peft.priors import DEFAULT_FEATURES, Priors
from coldstart_peft.priors.model import START
from coldstart_peft.scorer import Scorer

HOST = create_host(load_entrypoints=False)
SET_WEIGHTS = {"popularity": 0.7, "lexical": 2.0, "cooccurrence": 1.3, "neighbour_text": 2.6}


@pytest.fixture(scope="module")
def split():
    # Few users for many items, so some items were touched by test users only.
    return cold_user_split(demo_dataset(n_items=400, n_users=150), k=3)


def _ids_task(groups):
    """The toy colour task with ids: an item's id is its text, the context is the clicked item."""
    out = []
    for g in groups:
        clicked = g.user_text.split("clicked ")[1]
        out.append(TrainGroup(g.user_text, g.item_texts, g.labels, item_ids=list(g.item_texts), context_ids=[clicked]))
    return out


def test_a_prior_fitted_on_a_split_never_counts_test_users(split, tiny_base):
    priors = Priors(tokenizer=build_scorer("bi-encoder", tiny_base, host=HOST).tokenizer)
    priors.fit(training_groups(split, n_negatives=1))
    train_items = {i for s in split.train_sequences().values() for i in s}
    test_only = sorted({i for r in split.test for i in (*r.context, r.target)} - train_items)
    assert test_only, "the demo split has items only test users touched"
    columns = priors.tables.columns(test_only)
    assert (priors.tables.popularity_of(columns) == 0).all()
    cases = [c for c in split.ranking_cases("test") if set(c.context_ids) & set(test_only)]
    features = priors.pairs([c.user_text for c in cases], [c.candidate_texts[0] for c in cases],
                            [c.context_ids for c in cases], [c.candidate_ids[0] for c in cases])  # fmt: skip
    trained = priors.tables.popularity_of(priors.tables.columns(sorted(train_items)))
    assert trained.max() > 0, "training items do have popularity"
    assert features.shape == (len(cases), len(DEFAULT_FEATURES))


def test_items_with_the_same_text_keep_their_own_priors_and_a_new_text_keeps_its_prior(tiny_base):
    tokenizer = build_scorer("bi-encoder", tiny_base, host=HOST).tokenizer
    groups = [TrainGroup("likes red", ["red soap"], [1.0], item_ids=["A"], context_ids=["C"])] * 5
    groups += [TrainGroup("likes red", ["red soap"], [1.0], item_ids=["B"], context_ids=["D"])]
    priors = Priors(tokenizer=tokenizer)
    priors.fit(groups)
    same_text = priors.pairs(["likes red"] * 2, ["red soap"] * 2, [["C"], ["C"]], ["A", "B"])
    popularity, cooccurrence = same_text[:, 0], same_text[:, 2]
    assert popularity[0] == pytest.approx(np.log1p(5)) and popularity[1] == pytest.approx(np.log1p(1))
    assert cooccurrence[0] == pytest.approx(np.log1p(5)) and cooccurrence[1] == 0, "B was never bought next to C"
    renamed = priors.pairs(["likes red"], ["red soap, new price $9"], [["C"]], ["A"])
    assert renamed[0, 0] == popularity[0] and renamed[0, 2] == cooccurrence[0], "a changed text keeps the id's prior"


def test_any_serializer_gives_the_same_id_priors(split, tiny_base):
    tokenizer = build_scorer("bi-encoder", tiny_base, host=HOST).tokenizer
    custom = TextSerializer(TextConfig(history_label="Customer history >>", separator=" || ", item_fields=("brand", "title")))
    columns = {}
    for name, serializer in {"default": TextSerializer(), "custom": custom}.items():
        priors = Priors(("popularity", "cooccurrence"), tokenizer=tokenizer)
        priors.fit(training_groups(split, n_negatives=2, serializer=serializer))
        cases = split.ranking_cases("test", serializer)
        columns[name] = priors.pairs(
            [c.user_text for c in cases for _ in c.candidate_texts], [t for c in cases for t in c.candidate_texts],
            [c.context_ids for c in cases for _ in c.candidate_texts], [i for c in cases for i in c.candidate_ids],
        )
    assert columns["custom"][:, 1].abs().sum() > 0, "co-occurrence is read from ids, not parsed from the text"
    torch.testing.assert_close(columns["custom"], columns["default"])


def test_training_grid_hides_what_the_group_itself_added(tiny_base):
    tokenizer = build_scorer("bi-encoder", tiny_base, host=HOST).tokenizer
    alone = TrainGroup("likes red", ["red soap", "blue comb"], [1.0, 0.0], item_ids=["A", "B"], context_ids=["C"])
    other = TrainGroup("likes blue", ["blue comb"], [1.0], item_ids=["B"], context_ids=["C"])
    priors = Priors(tokenizer=tokenizer)
    priors.fit([alone, other])
    grid = priors.grid([alone, other])
    assert grid.shape == (2, 3, len(DEFAULT_FEATURES))
    assert grid[0, 0, 0] == 0 and grid[0, 0, 2] == 0, "A's only purchase and co-occurrence are the group's own"
    assert grid[0, 1, 0] == pytest.approx(np.log1p(1)), "B's purchase by the other group stays"
    assert grid[1, 2, 0] == 0 and grid[0, 2, 0] == pytest.approx(np.log1p(1))


@pytest.mark.parametrize("scorer_name", ["bi-encoder", "cross-encoder"])
def test_priors_train_with_any_scorer_and_round_trip_in_a_fresh_process(scorer_name, tiny_base, toy_task, tmp_path):
    groups = _ids_task(toy_task[0])
    scorer = build_scorer(scorer_name, tiny_base, {"max_length": 32}, host=HOST)
    scorer.attach_priors(Priors())
    apply_method(scorer, HOST.method("lora")())
    result = train(scorer, scorer.method, groups, config=TrainConfig(max_steps=6, batch_size=16, prior_lr=0.1,
                                                                     progress=False, precision="fp32"))  # fmt: skip
    assert result.steps == 6
    moved = scorer.priors.weight.detach() - torch.tensor([START[f] for f in DEFAULT_FEATURES])
    assert (moved.abs() > 1e-4).all(), "every prior weight is learned"
    with torch.no_grad():
        for name, p in scorer.backbone.named_parameters():
            if "lora_B" in name:
                p.add_(0.05 * torch.randn_like(p))
        scorer.priors.weight.copy_(torch.tensor(list(SET_WEIGHTS.values())))
    folder = save_adapter(scorer, tmp_path / "adapter")
    manifest = json.loads((folder / "coldstart.json").read_text())
    assert manifest["priors"]["features"] == list(DEFAULT_FEATURES) and "popularity_prior" not in manifest["scorer_config"]
    users = [g.user_text for g in groups[:6]]
    items = [g.item_texts[0] for g in groups[:6]]
    contexts = [g.context_ids for g in groups[:6]]
    # Both processes score in fp32: `auto` is decided by a timing probe in each process, and on a
    # CPU with native bf16 a loaded machine can tip one of them to the other precision.
    scorer.precision = "fp32"
    expected = scorer.score(users, items, context_ids=contexts, item_ids=items)
    assert not np.allclose(expected, scorer.score_texts(users, items), atol=1e-3), "the priors add to the score"
    code = f"""
import json, sys
from coldstart_peft import load_adapter
scorer = load_adapter({str(folder)!r})
scorer.precision = "fp32"
print(json.dumps(scorer.score({users!r}, {items!r}, context_ids={contexts!r}, item_ids={items!r}).tolist()))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    np.testing.assert_allclose(json.loads(out.strip().splitlines()[-1]), expected, rtol=1e-5)
    assert load_adapter(folder).priors.named_weights() == pytest.approx(SET_WEIGHTS)


def test_a_tampered_table_file_is_refused(tiny_base, toy_task, tmp_path):
    from coldstart_peft.errors import CorruptAdapterError
    from coldstart_peft.priors import PriorTables

    scorer = build_scorer("bi-encoder", tiny_base, {"max_length": 32}, host=HOST)
    scorer.attach_priors(Priors())
    apply_method(scorer, HOST.method("lora")())
    scorer.priors.fit(_ids_task(toy_task[0]))
    folder = save_adapter(scorer, tmp_path / "adapter")
    other = Priors(tokenizer=scorer.tokenizer)
    other.fit(_ids_task(toy_task[0][:10]))
    other.tables.save(folder / "prior_tables.safetensors")
    with pytest.raises(CorruptAdapterError, match="not the ones it was trained with"):
        load_adapter(folder)
    (folder / "prior_tables.safetensors").unlink()
    with pytest.raises(CorruptAdapterError, match="AdapterBank.load"):
        load_adapter(folder)
    assert isinstance(scorer.priors.tables, PriorTables)


def test_format_1_adapters_load_without_priors_and_are_refused_with_them(tiny_base, tmp_path):
    scorer = build_scorer("bi-encoder", tiny_base, {"max_length": 32}, host=HOST)
    apply_method(scorer, HOST.method("lora")())
    folder = save_adapter(scorer, tmp_path / "old")
    manifest = json.loads((folder / "coldstart.json").read_text())
    manifest["format_version"] = 1
    manifest.pop("priors")
    manifest["scorer_config"].update(popularity_prior=False, lexical_prior=False, cooccurrence_prior=False)
    (folder / "coldstart.json").write_text(json.dumps(manifest))
    assert load_adapter(folder).priors is None
    manifest["scorer_config"]["lexical_prior"] = True
    (folder / "coldstart.json").write_text(json.dumps(manifest))
    with pytest.raises(OutdatedAdapterError, match="retrain"):
        load_adapter(folder)


def test_a_scorer_without_offsets_in_its_loss_is_refused_priors_by_name(tiny_base):
    class OldStyle(Scorer):
        name = "old-style"

        def compute_loss(self, batch):
            return torch.zeros(())

    base = build_scorer("bi-encoder", tiny_base, host=HOST)
    scorer = OldStyle(base.backbone, base.tokenizer)
    with pytest.raises(PluginError, match="compute_loss\\(batch, offsets\\)"):
        scorer.attach_priors(Priors())
    scorer.attach_priors(None)
    assert scorer.priors is None


def test_tables_round_trip_exactly_in_narrow_types(split, tiny_base, tmp_path):
    from safetensors.torch import load_file

    from coldstart_peft.errors import CorruptAdapterError
    from coldstart_peft.priors import PriorTables

    priors = Priors(tokenizer=build_scorer("bi-encoder", tiny_base, host=HOST).tokenizer)
    tables = priors.fit(training_groups(split, n_negatives=1))
    stored = load_file(str(tables.save(tmp_path / "t.safetensors")))
    assert stored["cols"].dtype == torch.int16 and stored["counts"].dtype == torch.uint8
    loaded = PriorTables.from_state(stored, "t")
    assert loaded.digest() == tables.digest()
    for name in ("keys", "popularity", "rows", "cols", "counts", "idf"):
        assert torch.equal(getattr(loaded, name).long() if name in ("rows", "cols", "counts") else getattr(loaded, name),
                           getattr(tables, name).long() if name in ("rows", "cols", "counts") else getattr(tables, name)), name
    broken = dict(stored, row_starts=stored["row_starts"].flip(0))
    with pytest.raises(CorruptAdapterError, match="inconsistent"):
        PriorTables.from_state(broken, "t")
