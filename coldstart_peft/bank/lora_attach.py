"""Attach one more saved LoRA adapter to a ``PeftModel`` in time that does not grow with the bank.

``PeftModel.load_adapter`` walks every module of the model (adapter internals included) about
ten times per call: to match targets, to reset trainability, to cast dtypes, to remap and load
the state dict, to switch to eval mode. Each adapter adds modules, so on a bank of 50 LoRA
adapters those walks, not the new weights, are most of the cost of adding one.

:func:`attach_lora` does what ``load_adapter`` does for a plain LoRA adapter whose target layers
are already LoRA layers, and nothing more: the targets are matched on the base model's modules
only, each target layer gets the new adapter through peft's own ``_create_and_replace`` (so
ranks, scalings, dropout and dtypes follow peft), and the weights are copied into exactly the new
parameters. While a layer builds the new adapter it holds no other adapter, because peft's
per-layer bookkeeping (``set_adapter``, the device move) loops over every adapter a layer holds.
Anything else (another peft type, a LoRA variant such as DoRA, extra trainable modules, targets
not yet wrapped, options this module does not know) is left to ``load_adapter``.

The fast path reaches into peft's tuner internals, so it runs only on the peft releases it is
tested with (:data:`FAST_PATH_PEFT`); on any other release every adapter goes through the
public ``load_adapter`` instead, slower on large banks but the same result.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator
from pathlib import Path

import torch
from peft import LoraConfig, PeftConfig, PeftModel
from peft.tuners.lora import Linear as LoraLinear
from peft.tuners.tuners_utils import BaseTunerLayer, cast_adapter_dtype
from peft.utils import PeftType
from peft.utils.constants import MIN_TARGET_MODULES_FOR_OPTIMIZATION
from peft.utils.other import AuxiliaryTrainingWrapper
from torch import nn

from coldstart_peft.errors import CorruptAdapterError

FAST_PATH_PEFT = ("0.21.",)
"""peft release prefixes whose tuner internals the fast path is tested against."""

PREFIX = "base_model.model."
"""Where peft's saved LoRA keys start: ``PeftModel.base_model`` (the tuner), then its ``model``."""

MATCHED_FIELDS = {
    "task_type", "peft_type", "auto_mapping", "peft_version", "base_model_name_or_path", "revision",
    "inference_mode", "r", "target_modules", "exclude_modules", "lora_alpha", "lora_dropout", "use_rslora",
    "init_lora_weights", "layers_to_transform", "layers_pattern", "rank_pattern", "alpha_pattern",
}  # fmt: skip
"""``LoraConfig`` fields that may differ from peft's defaults here: they only choose targets,
shapes and scalings. Any other field set (bias, modules_to_save, variants, base-weight
initialisations) may change the model beyond the new adapter's layers, so peft loads it."""


def fast_path_supported() -> bool:
    """Whether the installed peft is one the fast path is tested with."""
    import peft

    return peft.__version__.startswith(FAST_PATH_PEFT)


def missing_weights_error(directory: Path, missing: list[str]) -> CorruptAdapterError:
    """The error for an adapter folder that lacks some of its adapter's weights."""
    return CorruptAdapterError(
        f"{directory} lacks {len(missing)} weights the adapter needs (e.g. {missing[0]}); "
        "it was saved incompletely or for another configuration; save it again"
    )


def read_lora_config(directory: Path) -> PeftConfig:
    """The adapter config in ``directory``, read as ``PeftModel.load_adapter`` reads it."""
    from peft.mapping import PEFT_TYPE_TO_CONFIG_MAPPING

    return PEFT_TYPE_TO_CONFIG_MAPPING[PeftConfig._get_peft_type(str(directory))].from_pretrained(str(directory))


def attach_lora(peft: PeftModel, name: str, config: PeftConfig, weights: dict[str, torch.Tensor], directory: Path) -> bool:
    """Add the saved LoRA adapter ``weights`` under ``name``, as ``peft.load_adapter`` would.

    Args:
        peft: a model holding LoRA adapters already.
        name: the new adapter's name.
        config: its config (:func:`read_lora_config`).
        weights: its saved tensors, already checked to be finite.
        directory: where they were read from, for error messages.

    Returns:
        ``False``, with the model untouched, when the adapter needs ``peft.load_adapter``.

    Raises:
        CorruptAdapterError: weights are missing or of the wrong shape; the model is as before.
    """
    targets = _targets(peft, config)
    if targets is None:
        return False
    config.inference_mode = True
    peft._check_new_adapter_config(config, is_trainable=False)
    peft.peft_config[name] = config
    try:
        tuner = peft.base_model
        tuner._check_new_adapter_config(config)
        pairs = []
        for key, parent, target in targets:
            with _alone(target, name):
                tuner._create_and_replace(config, name, target, key.rpartition(".")[2], parent, current_key=key)
                # Before the copy, as load_adapter does: a half-precision base gets float32 adapters.
                cast_adapter_dtype(target, name)
                pairs += _new_parameters(target, name, key)
        _copy_weights(pairs, weights, directory)
        known = set(tuner.targeted_module_names)
        tuner.targeted_module_names.extend(key for key, _, _ in targets if key not in known)
    except BaseException:
        peft.delete_adapter(name)
        raise
    return True


def _targets(peft: PeftModel, config: PeftConfig) -> list[tuple[str, nn.Module, LoraLinear]] | None:
    """``(key, parent, layer)`` of every layer ``config`` adapts, or ``None`` where peft must load it."""
    if not fast_path_supported():
        return None
    if type(config) is not LoraConfig or config.peft_type != PeftType.LORA or peft.peft_type != PeftType.LORA:
        return None
    if getattr(peft, "modules_to_save", None) or _converts_weights(peft.base_model.model):
        return None
    defaults = LoraConfig()
    if any(getattr(config, f.name) != getattr(defaults, f.name) for f in dataclasses.fields(config) if f.name not in MATCHED_FIELDS):
        return None
    if config.init_lora_weights not in (True, False, "gaussian"):
        return None
    modules = config.target_modules
    if not isinstance(modules, (list, set)) or not modules or len(modules) >= MIN_TARGET_MODULES_FOR_OPTIMIZATION:
        return None
    tuner, targets = peft.base_model, []
    for key, parent, module in _base_modules(tuner.model):
        if isinstance(module, AuxiliaryTrainingWrapper):
            return None
        if not tuner._check_target_module_exists(config, key):  # also False for excluded modules
            continue
        # A target that is not a plain LoRA linear layer yet would be wrapped, changing the model's structure.
        if type(module) is not LoraLinear or module.merged or module.resolve_lora_variant(config=config) is not None:
            return None
        if not _plain_containers(module):
            return None
        tuner._check_target_module_compatiblity(config, tuner.model, key.rpartition(".")[2])
        targets.append((key, parent, module))
    return targets or None


def _converts_weights(model: nn.Module) -> bool:
    """Whether transformers renames this architecture's weights, which peft then mirrors on load."""
    try:
        from transformers.conversion_mapping import get_checkpoint_conversion_mapping
    except ImportError:
        return False
    model_type = getattr(getattr(model, "config", None), "model_type", None)
    return model_type is not None and get_checkpoint_conversion_mapping(model_type) is not None


def _base_modules(module: nn.Module, prefix: str = "") -> Iterator[tuple[str, nn.Module, nn.Module]]:
    """``(key, parent, module)`` in ``named_modules`` order, not descending into adapter layers.

    These are the modules ``inject_adapter`` matches against; skipping the adapters' insides is
    what keeps the walk the same length however many adapters are loaded.
    """
    for child_name, child in module.named_children():
        key = f"{prefix}.{child_name}" if prefix else child_name
        yield key, module, child
        if not isinstance(child, BaseTunerLayer):
            yield from _base_modules(child, key)


def _containers(layer: BaseTunerLayer) -> tuple[str, ...]:
    """The layer's per-adapter containers: what peft's ``delete_adapter`` removes an adapter from."""
    return layer.adapter_layer_names + layer.other_param_names


def _plain_containers(layer: BaseTunerLayer) -> bool:
    return all(type(getattr(layer, attr, None)) in (dict, nn.ModuleDict, nn.ParameterDict) for attr in _containers(layer))


@contextlib.contextmanager
def _alone(layer: BaseTunerLayer, name: str) -> Iterator[None]:
    """Let ``layer`` hold only adapter ``name`` inside the block, then put the others back beside it."""
    kept = {attr: getattr(layer, attr) for attr in _containers(layer)}
    for attr, container in kept.items():
        setattr(layer, attr, type(container)())
    try:
        yield
    finally:
        for attr, container in kept.items():
            fresh = getattr(layer, attr)
            if name in fresh:
                container[name] = fresh[name]
            setattr(layer, attr, container)


def _new_parameters(layer: BaseTunerLayer, name: str, key: str) -> list[tuple[str, nn.Parameter]]:
    """``(saved key, parameter)`` of adapter ``name`` on ``layer``, which holds no other adapter.

    The saved key is the parameter's name in the ``PeftModel`` without the adapter name, as
    ``get_peft_model_state_dict`` writes it for LoRA.
    """
    pairs = []
    for attr in layer.adapter_layer_names:
        container = getattr(layer, attr)
        if name not in container:
            continue
        entry = container[name]
        if isinstance(entry, nn.Parameter):
            pairs.append((f"{PREFIX}{key}.{attr}", entry))
            continue
        pairs += [(f"{PREFIX}{key}.{attr}.{pname}", p) for pname, p in entry.named_parameters()]
    for attr in _containers(layer):
        container = getattr(layer, attr)
        if name in container and isinstance(container[name], nn.Module):
            container[name].eval()  # load_adapter ends in eval mode; new modules (dropout) start in training mode
    return pairs


@torch.no_grad()
def _copy_weights(pairs: list[tuple[str, nn.Parameter]], weights: dict[str, torch.Tensor], directory: Path) -> None:
    """Copy each saved tensor into its parameter, after checking that all are there and fit."""
    missing = [key for key, _ in pairs if key not in weights]
    if missing:
        raise missing_weights_error(directory, missing)
    for key, parameter in pairs:
        if weights[key].shape != parameter.shape:
            raise CorruptAdapterError(
                f"could not load the adapter in {directory}: size mismatch for {key}: the file holds shape "
                f"{tuple(weights[key].shape)}, its adapter_config.json gives {tuple(parameter.shape)}; save it again"
            )
    for key, parameter in pairs:
        parameter.copy_(weights[key])
