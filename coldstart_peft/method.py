"""The contract every fine-tuning method plugin implements.

A method decides which parameters of the scorer's backbone train, and how its own weights are
saved and restored. It never touches the scorer's head: the scorer owns that.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from coldstart_peft.config_types import check_field_types
from coldstart_peft.errors import ConfigError


@dataclasses.dataclass
class MethodConfig:
    """Base of method configs. Subclasses add fields with ``metadata={"help": ...}``."""

    def validate(self) -> None:
        """Raise :class:`ConfigError` for values that cannot work (override to add checks)."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-serializable view, stored in adapter manifests."""
        return dataclasses.asdict(self)


def build_config(config_class: type, values: dict[str, Any] | None) -> Any:
    """Build a config dataclass from a dict, rejecting unknown fields by name.

    Raises:
        ConfigError: ``values`` is not a mapping, a key is not a field of ``config_class``, a
            value has the wrong JSON type, or validation fails.
    """
    if values is not None and not isinstance(values, dict):
        raise ConfigError(f"{config_class.__name__} settings must be an object of field values, got {type(values).__name__}")
    values = dict(values or {})
    known = {f.name for f in dataclasses.fields(config_class)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(
            f"unknown {config_class.__name__} field(s) {unknown}; valid fields: {sorted(known)}"
        )
    check_field_types(config_class, values)
    config = config_class(**values)
    if hasattr(config, "validate"):
        config.validate()
    return config


def describe_config(config_class: type) -> list[tuple[str, Any, str]]:
    """Return ``(field, default, help)`` for every field of a config dataclass."""
    rows = []
    for f in dataclasses.fields(config_class):
        default = f.default if f.default is not dataclasses.MISSING else None
        if f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
            default = f.default_factory()  # type: ignore[misc]
        rows.append((f.name, default, f.metadata.get("help", "")))
    return rows


class Method:
    """A parameter-efficient (or full) fine-tuning method.

    Subclasses set the class attributes and implement :meth:`prepare`, :meth:`save` and
    :meth:`load`. Instances are stateless apart from their config, so one instance can
    prepare many models.

    Attributes:
        name: registry name, lowercase.
        config_class: the dataclass holding this method's settings.
        supports_mixed_batches: several domain adapters can serve one batch (peft LoRA).
        supports_merge: adapter weights can be folded into the base weights for inference.
        recommended_lr: the learning rate the engine uses when the user sets none; methods
            with few parameters (prompt tuning, IA3) need far larger steps than full tuning.
    """

    name: ClassVar[str] = ""
    config_class: ClassVar[type] = MethodConfig
    supports_mixed_batches: ClassVar[bool] = False
    supports_merge: ClassVar[bool] = False
    recommended_lr: ClassVar[float] = 1e-3

    def __init__(self, config: MethodConfig | dict[str, Any] | None = None):
        if config is None or isinstance(config, dict):
            config = build_config(self.config_class, config)
        elif not isinstance(config, self.config_class):
            raise ConfigError(f"{self.name} expects a {self.config_class.__name__}, got {type(config).__name__}")
        else:
            config.validate()
        self.config = config

    @classmethod
    def description(cls) -> str:
        """First line of the class docstring, shown by ``coldstart-peft plugins``."""
        return (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else ""

    def prepare(self, model: nn.Module, config: MethodConfig, *, total_steps: int | None = None) -> nn.Module:
        """Make ``model`` trainable the method's way and return the model to train.

        Args:
            model: the base encoder (a ``transformers`` model), freshly loaded.
            config: this method's config (normally ``self.config``).
            total_steps: optimizer steps the engine will take; schedule-aware methods
                (AdaLoRA) need it, others ignore it.

        Returns:
            The model to train; may wrap ``model`` (peft) or be ``model`` itself.
        """
        raise NotImplementedError

    def on_step(self, model: nn.Module, step: int) -> None:
        """Run after every optimizer step, before the gradients are cleared (``step`` counts from 1).

        The gradients of that step are still on the parameters, so importance-based methods
        (AdaLoRA's rank allocator) can read them. Default: nothing.
        """

    def regularization(self, model: nn.Module) -> torch.Tensor | None:
        """An extra loss term the engine adds to the task loss (AdaLoRA's orthogonality)."""
        return None

    def learning_rate_scale(self, name: str) -> float:
        """How many times the method's learning rate the trainable backbone parameter ``name`` takes.

        ``name`` is the parameter's name within the prepared model (as ``named_parameters`` gives
        it). LoRA+ returns its ratio for the B matrices. Default: 1.0 for every parameter.
        """
        return 1.0

    def state_dict(self, model: nn.Module) -> dict[str, torch.Tensor]:
        """Run state outside the model's parameters that a resumed run needs (tensors only).

        Checkpoints store it so a run killed mid-way resumes exactly; AdaLoRA returns its
        importance scores and rank pattern. Default: nothing.
        """
        return {}

    def load_state_dict(self, model: nn.Module, state: dict[str, torch.Tensor]) -> None:
        """Restore what :meth:`state_dict` returned, onto the prepared ``model``. Default: nothing."""

    def save(self, model: nn.Module, directory: Path) -> None:
        """Write only this method's own weights (safetensors) and config into ``directory``."""
        raise NotImplementedError

    def load(self, model: nn.Module, directory: Path) -> nn.Module:
        """Apply the weights saved in ``directory`` to a fresh base ``model`` and return it."""
        raise NotImplementedError

    def merge(self, model: nn.Module) -> nn.Module:
        """Fold adapter weights into the base for inference (only if ``supports_merge``)."""
        raise NotImplementedError(f"method {self.name!r} does not support merging")

    def merge_in_place(self, model: nn.Module) -> bool:
        """Fold adapter weights into the base so that :meth:`unmerge_in_place` can take them out again.

        Scoring a merged model costs one matrix product per layer instead of the base's plus the
        adapter's. Returns whether anything was merged. Default: nothing (``False``).
        """
        return False

    def unmerge_in_place(self, model: nn.Module) -> None:
        """Undo :meth:`merge_in_place` before the adapter trains again. Default: nothing."""

    def weight_files(self) -> list[str]:
        """File names (relative to the adapter folder) holding this method's weights."""
        return []


def count_parameters(model: nn.Module) -> tuple[int, int]:
    """Return ``(trainable, total)`` parameter counts of ``model``."""
    trainable = total = 0
    for p in model.parameters():
        total += p.numel()
        if p.requires_grad:
            trainable += p.numel()
    return trainable, total
