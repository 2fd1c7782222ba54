"""Build scorers on a base model and apply a method to them.

Kept apart from the registries and the engine so that training, loading and the adapter bank
all assemble models the same way, and the base-model fingerprint is always taken before any
method wraps the backbone.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from coldstart_peft.backbone import (
    load_backbone,
    load_tokenizer,
    model_fingerprint,
    portable_reference,
    resolve_model_path,
)
from coldstart_peft.errors import ColdStartError, PluginError
from coldstart_peft.host import PluginHost, default_host
from coldstart_peft.load_options import check_load_options
from coldstart_peft.method import Method
from coldstart_peft.scorer import Scorer


def build_scorer(
    scorer: str = "cross-encoder",
    base_model: str | Path | None = None,
    config: dict[str, Any] | None = None,
    host: PluginHost | None = None,
    local_files_only: bool = False,
    load_options: dict[str, Any] | None = None,
) -> Scorer:
    """Load the base encoder and wrap it in a registered scorer.

    Args:
        scorer: registered scorer name.
        base_model: HF model name or folder; ``None`` for the bundled MiniLM.
        config: fields of the scorer's config dataclass.
        host: plugin host to look the scorer up in; the default host if ``None``.
        local_files_only: never download the base model (see :func:`~coldstart_peft.backbone.load_backbone`).
        load_options: passed to ``from_pretrained`` (``dtype="bfloat16"``, ``device_map="auto"``; see
            :func:`~coldstart_peft.load_options.check_load_options`), so a big backbone loads without
            a float32 copy.

    Returns:
        The scorer, with ``base_model_name`` and ``base_fingerprint`` recorded on it.

    Raises:
        BaseModelUnavailableError: with ``local_files_only``, the base model is not on this machine.
    """
    host = host or default_host()
    scorer_class = host.scorer(scorer)
    options = check_load_options(load_options)
    backbone = load_backbone(base_model, local_files_only=local_files_only, **options)
    model = scorer_class(backbone, load_tokenizer(base_model, local_files_only=local_files_only), config)
    model.load_options = options  # recorded in the adapter's manifest, so a later load matches
    model.base_model_name = portable_reference(base_model)
    model.base_model_path = resolve_model_path(base_model)
    model.base_fingerprint = model_fingerprint(backbone)
    model.method = None
    return model


def make_method(name: str, config: dict[str, Any] | None = None, host: PluginHost | None = None) -> Method:
    """Instantiate the registered method ``name`` with ``config`` fields."""
    return (host or default_host()).method(name)(config)


def apply_method(scorer: Scorer, method: Method, total_steps: int | None = None) -> Scorer:
    """Let ``method`` prepare the scorer's backbone for training; the head always trains.

    Args:
        scorer: a scorer fresh from :func:`build_scorer`.
        method: the method instance.
        total_steps: optimizer steps planned (schedule-aware methods need it).

    Returns:
        The same scorer, its backbone replaced by the prepared one.

    Raises:
        PluginError: the method's ``prepare`` failed with an error of its own (a bug in the plugin).
    """
    for parameter in scorer.backbone.parameters():
        parameter.requires_grad_(False)
    try:
        scorer.backbone = method.prepare(scorer.backbone, method.config, total_steps=total_steps)
    except ColdStartError:
        raise  # the plugin's own named error already says what to do
    except Exception as exc:  # a plugin's bug: name the plugin so the user knows whose it is
        raise PluginError(
            f"method {method.name!r} ({type(method).__module__}) failed in prepare: {type(exc).__name__}: {exc}; "
            "fix or update the plugin, or train with another method (see `coldstart-peft plugins`)"
        ) from exc
    for name, parameter in scorer.named_parameters():
        if not name.startswith("backbone."):
            parameter.requires_grad_(True)
    scorer.method = method
    return scorer
