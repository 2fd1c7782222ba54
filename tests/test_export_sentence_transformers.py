"""Export to sentence-transformers: the exported model embeds exactly as the trained bi-encoder does."""

from __future__ import annotations

import json

import pytest
import torch

from coldstart_peft import apply_method, build_scorer, load_adapter, make_method, save_adapter
from coldstart_peft.cli import main
from coldstart_peft.errors import ExportError, OverwriteRefusedError
from coldstart_peft.export import MARKER, export_sentence_transformers

SentenceTransformer = pytest.importorskip("sentence_transformers").SentenceTransformer

TEXTS = ["likes red lipstick ; clicked red cream", "green soap", "a gold perfume item", "white brush . title : pink"]


def _adapter(base, folder, scorer="bi-encoder", config=None, method="lora"):
    torch.manual_seed(0)
    model = build_scorer(scorer, base, {"max_length": 16, **(config or {})})
    apply_method(model, make_method(method, {"r": 2} if method == "lora" else None))
    with torch.no_grad():  # lora_B starts at zero: a non-identity adapter, so an unmerged export would show
        for name, parameter in model.backbone.named_parameters():
            if "lora_B" in name:
                parameter.normal_(0, 0.3)
    model.precision = "fp32"
    return save_adapter(model, folder)


def _library_embeddings(folder, side="user"):
    scorer = load_adapter(folder)
    scorer.precision = "fp32"
    return scorer.encode(TEXTS, side=side).numpy()


def _base_embeddings(base):
    scorer = build_scorer("bi-encoder", base, {"max_length": 16})
    scorer.precision = "fp32"
    return scorer.encode(TEXTS).numpy()


@pytest.mark.parametrize("pooling", ["mean"])
def test_exported_model_embeds_as_the_bi_encoder(tiny_base, tmp_path, pooling):
    folder = _adapter(tiny_base, tmp_path / "adapter", config={"pooling": pooling})
    out = export_sentence_transformers(folder, tmp_path / "st")
    exported = SentenceTransformer(str(out), device="cpu").encode(TEXTS, convert_to_numpy=True)
    expected = _library_embeddings(folder)
    assert abs(exported - expected).max() <= 1e-5
    assert abs(expected - _base_embeddings(tiny_base)).max() > 1e-3  # the adapter matters: merging it shows


def test_templates_become_prompts_and_dot_similarity_skips_normalizing(tiny_base, tmp_path):
    config = {"user_template": "likes {text}", "item_template": "item : {text}", "similarity": "dot"}
    folder = _adapter(tiny_base, tmp_path / "adapter", config=config)
    out = export_sentence_transformers(folder, tmp_path / "st")
    model = SentenceTransformer(str(out), device="cpu")
    for side in ("user", "item"):
        exported = model.encode(TEXTS, prompt_name=side, convert_to_numpy=True)
        assert abs(exported - _library_embeddings(folder, side)).max() <= 1e-5
    assert abs((exported**2).sum(-1) - 1).max() > 1e-3  # not normalized: dot products as trained
    assert json.loads((out / MARKER).read_text())["prompts"] == {"user": "likes ", "item": "item : "}


def test_cross_encoder_is_refused_by_name(tiny_base, tmp_path, capsys):
    folder = _adapter(tiny_base, tmp_path / "adapter", scorer="cross-encoder")
    with pytest.raises(ExportError, match="bi-encoder"):
        export_sentence_transformers(folder, tmp_path / "st")
    assert not (tmp_path / "st").exists()
    code = main(["export", "--adapter", str(folder), "--to", "sentence-transformers", str(tmp_path / "st")])
    assert code == 2 and "cross-encoder adapter cannot be exported" in capsys.readouterr().err


def test_a_method_that_cannot_merge_is_refused(tiny_base, tmp_path):
    folder = _adapter(tiny_base, tmp_path / "adapter", method="bottleneck")
    with pytest.raises(ExportError, match="folded into the base"):
        export_sentence_transformers(folder, tmp_path / "st")


def test_export_never_replaces_a_folder_it_did_not_write(tiny_base, tmp_path):
    folder = _adapter(tiny_base, tmp_path / "adapter")
    target = tmp_path / "mine"
    target.mkdir()
    (target / "notes.txt").write_text("keep me")
    with pytest.raises(OverwriteRefusedError):
        export_sentence_transformers(folder, target)
    assert (target / "notes.txt").read_text() == "keep me"
    out = tmp_path / "st"
    assert main(["export", "--adapter", str(folder), "--to", "sentence-transformers", str(out)]) == 0
    assert main(["export", "--adapter", str(folder), "--to", "sentence-transformers", str(out)]) == 0  # its own: replaced
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []
