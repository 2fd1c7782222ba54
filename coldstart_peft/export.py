"""Export a bi-encoder adapter as a sentence-transformers model: merged weights, the pooling and normalization it trained with.

The exported folder is a plain ``SentenceTransformer``: ``Transformer`` (the base model with the
adapter folded into its weights) -> ``Pooling`` (the scorer's pooling) -> ``Normalize`` (for
cosine similarity), and ``SentenceTransformer(folder).encode(texts)`` gives the embeddings
``scorer.encode`` gives. What a score adds on top of the two embeddings is not exported: the
learned scale and bias (they move every candidate of a user alike, so rankings ignore them)
and the priors (item-id tables beside the model; the adapter folder keeps them).

sentence-transformers is an optional dependency (``pip install 'coldstart-peft[export]'``).
"""

from __future__ import annotations

import json
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Any

from coldstart_peft.artifact import adapter_fingerprint, load_adapter
from coldstart_peft.errors import ExportError, MissingDependencyError, OverwriteRefusedError
from coldstart_peft.outputs import check_writable_dir, json_format, replace_dir

EXPORT_FORMAT = "coldstart-peft-sentence-transformers"
MARKER = "coldstart_export.json"
"""Written into every exported folder: where it came from, what was left out; a rerun may replace such a folder."""
ST_POOLING = {"mean": "mean", "cls": "cls", "last": "lasttoken"}
NOT_EXPORTED = [
    "the scorer's learned scale and bias (score = scale * similarity + bias; rankings of one user ignore both)",
    "the priors (popularity, lexical, co-occurrence, neighbour text): item-id tables kept in the adapter folder",
]


def _sentence_transformers():
    try:
        from sentence_transformers import SentenceTransformer
        from sentence_transformers.base.modules import Transformer
        from sentence_transformers.sentence_transformer.modules import Normalize, Pooling
    except ImportError:
        raise MissingDependencyError(
            "exporting to sentence-transformers needs the sentence-transformers package: "
            "pip install 'coldstart-peft[export]'"
        ) from None
    return SentenceTransformer, Transformer, Pooling, Normalize


def _prompt(template: str, side: str) -> str | None:
    """The prefix a sentence-transformers prompt can express, for a template ``prefix{text}``."""
    if not template:
        return None
    prefix, _, suffix = template.partition("{text}")
    if suffix:
        raise ExportError(
            f"the {side} template {template!r} puts text after {{text}}; sentence-transformers prompts are prefixes "
            "only, so the exported model could not embed as the scorer does. Train with a template ending in {text}"
        )
    return prefix


def check_exportable(scorer) -> dict[str, str]:
    """Raise unless ``scorer`` is a bi-encoder whose adapter folds into its base; return the prompts.

    Raises:
        ExportError: another scorer (a cross-encoder reads user and item together and has no
            embedding), a frozen item tower (two encoders), or a method that cannot be merged.
    """
    if scorer.name != "bi-encoder":
        raise ExportError(
            f"a {scorer.name} adapter cannot be exported to sentence-transformers: only a bi-encoder embeds a text on "
            "its own (a cross-encoder or generative scorer reads user and item together). Train with --scorer bi-encoder"
        )
    if scorer.config.item_tower != "shared":
        raise ExportError(
            "this bi-encoder embeds items with a frozen copy of the base model and users with the adapted one; "
            "a sentence-transformers model has one encoder. Train with --scorer-config item_tower=shared to export"
        )
    if not (scorer.method.supports_merge or scorer.method.name == "full"):
        raise ExportError(
            f"method {scorer.method.name!r} cannot be folded into the base weights, so the export would need "
            "coldstart-peft at run time; methods that merge: LoRA, DoRA, AdaLoRA, IA3 (and full fine-tuning)"
        )
    prompts = {"user": _prompt(scorer.config.user_template, "user"), "item": _prompt(scorer.config.item_template, "item")}
    return {side: prefix for side, prefix in prompts.items() if prefix is not None}


def check_export_target(out: str | Path) -> Path:
    """Raise unless ``out`` is absent, empty, or an earlier export (which a new export replaces).

    Raises:
        OverwriteRefusedError: ``out`` is a file, or a folder holding anything else.
        UnwritableOutputError: ``out`` cannot be created.
    """
    out = Path(out)
    if out.is_symlink() or out.exists() and not out.is_dir():
        raise OverwriteRefusedError(f"export target {out} exists and is not a folder this library wrote; choose another path")
    if out.is_dir() and any(out.iterdir()) and json_format(out / MARKER) != EXPORT_FORMAT:
        raise OverwriteRefusedError(
            f"export target {out} holds files that are not an export of this library; the export replaces the whole "
            "folder and would lose them. Choose a new path, or move the files away first"
        )
    check_writable_dir(out.parent if out.parent != out else out, "the folder of the export target")
    return out


def export_sentence_transformers(adapter: str | Path, out: str | Path, base_model: str | Path | None = None) -> Path:
    """Write the bi-encoder adapter at ``adapter`` as a sentence-transformers model folder ``out``.

    Args:
        adapter: a bi-encoder adapter folder (:func:`~coldstart_peft.save_adapter`).
        out: the folder to write; an earlier export there is replaced, anything else is refused.
        base_model: load the adapter onto this base model instead of the recorded one.

    Returns:
        ``out``. Load it with ``SentenceTransformer(out)``; with templates, embed users with
        ``encode(texts, prompt_name="user")`` and items with ``prompt_name="item"``.

    Raises:
        ExportError: the adapter's scorer or method cannot be exported (see :func:`check_exportable`).
        MissingDependencyError: sentence-transformers is not installed.
        OverwriteRefusedError: ``out`` holds files this library did not write.
    """
    SentenceTransformer, Transformer, Pooling, Normalize = _sentence_transformers()
    out = check_export_target(out)
    scorer = load_adapter(adapter, base_model=base_model)
    prompts = check_exportable(scorer)
    merged = scorer.backbone if scorer.method.name == "full" else scorer.method.merge(scorer.backbone)
    tmp = out.with_name(f".{out.name}.tmp-{uuid.uuid4().hex[:8]}")
    try:
        with tempfile.TemporaryDirectory(prefix=".coldstart-export-", dir=out.parent if out.parent.exists() else None) as work:
            merged.float().save_pretrained(work, safe_serialization=True)
            scorer.tokenizer.save_pretrained(work)
            encoder = Transformer(work, max_seq_length=scorer.config.max_length)
            modules = [encoder, Pooling(encoder.get_embedding_dimension(), pooling_mode=ST_POOLING[scorer.pooling])]
            if scorer.config.similarity == "cosine":
                modules.append(Normalize())
            model = SentenceTransformer(modules=modules, device="cpu", prompts=prompts or None,
                                        similarity_fn_name=scorer.config.similarity)  # fmt: skip
            model.save(str(tmp), create_model_card=False)
        (tmp / MARKER).write_text(json.dumps(_marker(adapter, scorer, prompts), indent=2), encoding="utf-8")
        replace_dir(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def _marker(adapter: str | Path, scorer, prompts: dict[str, str]) -> dict[str, Any]:
    return {
        "format": EXPORT_FORMAT,
        "adapter": str(adapter),
        "adapter_fingerprint": adapter_fingerprint(adapter),
        "base_model": scorer.manifest["base_model"]["name_or_path"],
        "method": scorer.method.name,
        "pooling": scorer.pooling,
        "similarity": scorer.config.similarity,
        "max_length": scorer.config.max_length,
        "prompts": prompts,
        "not_exported": NOT_EXPORTED,
    }
