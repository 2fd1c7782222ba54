"""Several domain adapters on one shared base model, and switching between them.

Two kinds of slots, chosen by how a method stores its weights:

* :class:`PeftSlots` for methods saved in peft's format (LoRA, DoRA, IA3, AdaLoRA, prompt
  learning): every adapter is a named peft adapter on one ``PeftModel``
  (``load_adapter(path, adapter_name=...)``), switching is ``set_adapter``, and LoRA can serve
  a mixed batch with ``adapter_names=`` and combine adapters with ``add_weighted_adapter``.
* :class:`StateSlots` for standalone methods whose weight files name backbone parameters
  (bottleneck adapters, full fine-tuning): the structure is built once and switching copies the
  domain's tensors into it. The base-model route copies the base weights back, and zeros for
  tensors the base model lacks, which is the exact identity for residual adapters whose
  up-projection is zero (bottleneck adapters).

The scorer head is per domain too; :class:`HeadSlots` keeps one small state dict per key and
copies it into the live head on switch.
"""

from __future__ import annotations

import copy
import warnings
from pathlib import Path

import torch
from peft import PeftModel
from peft.tuners.tuners_utils import BaseTunerLayer
from peft.utils import SAFETENSORS_WEIGHTS_NAME, PeftType
from peft.utils.other import AuxiliaryTrainingWrapper

from coldstart_peft.bank.batched_lora import BatchedLora
from coldstart_peft.bank.layout import BASE
from coldstart_peft.bank.lora_attach import attach_lora, missing_weights_error, read_lora_config
from coldstart_peft.errors import AdapterError, CorruptAdapterError
from coldstart_peft.method import Method
from coldstart_peft.scorer import Scorer


def _peft_of(backbone) -> PeftModel | None:
    """The ``PeftModel`` of a backbone, also when a plugin wraps it (prompt learning)."""
    if isinstance(backbone, PeftModel):
        return backbone
    inner = getattr(backbone, "peft_model", None)
    return inner if isinstance(inner, PeftModel) else None


class PeftSlots:
    """Named peft adapters on the scorer's one backbone."""

    def __init__(self, scorer: Scorer, method: Method):
        self.scorer, self.method = scorer, method
        self.active: str | None = None
        self._disabled = False
        self._layers: list[BaseTunerLayer] | None = None
        self._batched: BatchedLora | None | bool = False  # False: not built yet

    def batched(self) -> BatchedLora | None:
        """The gathered multi-adapter LoRA path for mixed batches, or ``None`` where it does not apply."""
        if self._batched is False:
            peft = self.peft
            self._batched = BatchedLora.build(peft) if peft is not None and self.mixed else None
        return self._batched

    def _changed(self) -> None:
        """Adapters were added or removed: the stacks of the batched path are stale."""
        self._batched = False

    @property
    def peft(self) -> PeftModel | None:
        """The ``PeftModel`` holding the adapters (``None`` before the first one is attached)."""
        return _peft_of(self.scorer.backbone)

    @property
    def mixed(self) -> bool:
        """Whether one batch can mix adapters (peft ``adapter_names``: LoRA without DoRA)."""
        return bool(self.method.supports_mixed_batches) and self.peft is not None

    @property
    def can_combine(self) -> bool:
        """Whether adapters combine into a new one (peft ``add_weighted_adapter``, LoRA only)."""
        peft = self.peft
        if peft is None or not hasattr(peft.base_model, "add_weighted_adapter"):
            return False
        return all(getattr(c, "peft_type", None) and c.peft_type.value == "LORA" and not getattr(c, "use_dora", False)
                   for c in peft.peft_config.values())  # fmt: skip

    def attach(self, key: str, directory: Path, weights: dict[str, dict[str, torch.Tensor]]) -> str:
        """Load the adapter in ``directory`` under ``key``; return the peft adapter name used.

        ``weights`` holds the folder's checked weights files by name, as ``AdapterBank`` read them.
        """
        self._changed()
        peft = self.peft
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="The following rank_pattern keys did not match")
            if peft is None:
                # The first adapter goes through the method's own loader, which may wrap the model;
                # peft names it "default".
                self.scorer.backbone = self.method.load(self.scorer.backbone, directory)
                self.active = self.peft.active_adapter
                self._layers = None
                return self.active
            try:
                quick = self._attach_lora(peft, key, directory, weights.get(SAFETENSORS_WEIGHTS_NAME))
                if not quick:
                    result = peft.load_adapter(str(directory), adapter_name=key, is_trainable=False)
            except (RuntimeError, ValueError, KeyError, OSError) as exc:
                if key in peft.peft_config:
                    peft.delete_adapter(key)
                raise CorruptAdapterError(f"could not load the adapter in {directory}: {exc}") from exc
        if not quick:
            self._layers = None  # new adapter layers may have appeared
            missing = [k for k in getattr(result, "missing_keys", []) if f".{key}." in k or k.endswith(f".{key}")]
            if missing:
                peft.delete_adapter(key)
                raise missing_weights_error(directory, missing)
        if self.active is not None and self.active != key:
            self.activate(self.active)  # load_adapter may leave peft's own choice active
        return key

    def _attach_lora(self, peft: PeftModel, key: str, directory: Path, tensors: dict[str, torch.Tensor] | None) -> bool:
        """Attach a plain LoRA adapter without ``load_adapter``'s whole-model walks (see :mod:`lora_attach`).

        Only the modules of the new adapter change, so the cached list of adapter layers
        stays valid. ``False`` means the adapter needs ``load_adapter``.
        """
        if peft.peft_type != PeftType.LORA or tensors is None:
            return False
        return attach_lora(peft, key, read_lora_config(directory), tensors, directory)

    def detach(self, name: str) -> None:
        """Remove adapter ``name`` from the model (another adapter must remain).

        A hot swap detaches the old adapter inside ``bank.add``; peft's ``delete_adapter`` walks
        every module twice, so plain models delete from the cached adapter layers instead.
        """
        self._changed()
        peft = self.peft
        if peft is None or name not in peft.peft_config:
            return
        layers = self._tuner_layers(peft)
        if layers and not peft.peft_config[name].is_prompt_learning and not any(name in m.merged_adapters for m in layers):
            other = next((k for k in peft.peft_config if k != name), None)
            if other is not None and name in layers[0].active_adapters:
                # Deleting the active adapter makes every layer call set_adapter, which flips
                # requires_grad on every loaded adapter: a hot swap would grow with the bank.
                self._switch(peft, other)
            del peft.peft_config[name]
            for layer in layers:
                layer.delete_adapter(name)
            peft.base_model.active_adapter = layers[0].active_adapters[:] or []
            if len(peft.active_adapters) == 1:
                peft.active_adapter = peft.active_adapters[0]
        else:
            peft.delete_adapter(name)
            self._layers = None
        if self.active == name:
            self.active = peft.active_adapter

    def activate(self, name: str) -> None:
        """Make ``name`` (or :data:`BASE`) the adapter every following forward pass uses."""
        peft = self.peft
        if name == BASE:
            if not hasattr(peft.base_model, "disable_adapter_layers"):
                raise AdapterError(f"method {self.method.name!r} cannot switch its adapter off; the base-model route is unavailable")
            if not self._disabled:
                peft.base_model.disable_adapter_layers()
                self._disabled = True
            return
        if self._disabled:
            peft.base_model.enable_adapter_layers()
            self._disabled = False
        if name != self.active or peft.active_adapter != name:
            self._switch(peft, name)
            self.active = name

    def _switch(self, peft: PeftModel, name: str) -> None:
        """``peft.set_adapter(name)`` without its cost that grows with every adapter loaded.

        peft's ``set_adapter`` walks every module and flips ``requires_grad`` on every adapter's
        weights, which matters for training only; a bank never trains, so switching sets the
        active name on the adapter layers directly. Anything unusual (prompt learning, extra
        trainable modules, a peft without the attribute) takes peft's own path.
        """
        layers = self._tuner_layers(peft)
        if not layers or peft.peft_config[name].is_prompt_learning:
            peft.set_adapter(name)
            return
        for layer in layers:
            layer._active_adapter = name
        peft.active_adapter = name
        peft.base_model.active_adapter = name

    def _tuner_layers(self, peft: PeftModel) -> list[BaseTunerLayer]:
        """The model's adapter layers (cached), or ``[]`` where anything unusual needs peft's own walks."""
        if self._layers is None:
            modules = list(peft.modules())
            layers = [m for m in modules if isinstance(m, BaseTunerLayer)]
            plain = (not getattr(peft, "modules_to_save", None) and all(hasattr(m, "_active_adapter") for m in layers)
                     and not any(isinstance(m, AuxiliaryTrainingWrapper) for m in modules))  # fmt: skip
            self._layers = layers if plain and layers else []
        return self._layers

    def combine(self, name: str, parts: dict[str, float]) -> str:
        """Add adapter ``name`` = weighted sum of the updates of ``parts`` (LoRA ``cat``: exact)."""
        self.peft.add_weighted_adapter(list(parts), list(parts.values()), adapter_name=name, combination_type="cat")
        self._layers = None
        self._changed()
        if self.active is not None:
            self.activate(self.active)
        return name

    def merged_backbone(self, name: str):
        """A standalone copy of the backbone with adapter ``name`` (:data:`BASE`: none) folded in."""
        clone = copy.deepcopy(self.peft)
        if name == BASE:
            return clone.unload()
        if not self.method.supports_merge:
            raise AdapterError(f"method {self.method.name!r} cannot merge its adapters into the base weights")
        if self._disabled:
            clone.base_model.enable_adapter_layers()
        clone.set_adapter(name)
        return clone.merge_and_unload(adapter_names=[name])


class StateSlots:
    """One adapter structure, its tensors swapped per domain (methods outside peft)."""

    mixed = False
    can_combine = False

    def __init__(self, scorer: Scorer, method: Method):
        self.scorer, self.method = scorer, method
        self.states: dict[str, dict[str, torch.Tensor]] = {}
        self.live: dict[str, torch.Tensor] | None = None
        self.active: str | None = None

    def attach(self, key: str, directory: Path, weights: dict[str, dict[str, torch.Tensor]]) -> str:
        """Keep the adapter in ``directory`` under ``key`` (the first one also builds the structure).

        ``weights`` holds the folder's checked weights files by name, as ``AdapterBank`` read them.
        """
        tensors = {k: v for file_tensors in weights.values() for k, v in file_tensors.items()}
        if not tensors:
            raise CorruptAdapterError(f"{directory} holds no weights for method {self.method.name!r}")
        if self.live is None:
            before = {k: v.detach().clone() for k, v in self.scorer.backbone.state_dict().items()}
            self.scorer.backbone = self.method.load(self.scorer.backbone, directory)
            live = self.scorer.backbone.state_dict()
            stray = sorted(set(tensors) - set(live))
            if stray:
                raise CorruptAdapterError(f"{directory} holds weights the model lacks (e.g. {stray[0]})")
            self.live = {k: live[k] for k in tensors}
            self.states[BASE] = {k: before[k] if k in before else torch.zeros_like(live[k]) for k in tensors}
        else:
            shapes = {k: tuple(v.shape) for k, v in tensors.items()}
            if shapes != {k: tuple(v.shape) for k, v in self.live.items()}:
                raise CorruptAdapterError(
                    f"{directory} holds {self.method.name} weights of another layout than the bank's adapters "
                    "(different settings or base model); retrain it with the bank's method config"
                )
        self.states[key] = tensors
        self.activate(key)
        return key

    def detach(self, name: str) -> None:
        """Forget the tensors of ``name``."""
        self.states.pop(name, None)

    @torch.no_grad()
    def activate(self, name: str) -> None:
        """Copy ``name``'s tensors (or the base's, for :data:`BASE`) into the model."""
        if name == self.active:
            return
        state = self.states[name]
        for key, tensor in self.live.items():
            tensor.copy_(state[key])
        self.active = name

    def merged_backbone(self, name: str):
        """A standalone copy of the backbone as the base model (:data:`BASE`); nothing else merges."""
        if name != BASE:
            raise AdapterError(f"method {self.method.name!r} cannot merge its adapters into the base weights")
        self.activate(BASE)
        return copy.deepcopy(self.scorer.backbone)


class HeadSlots:
    """One scorer-head state dict per routing key, copied into the live head on switch."""

    def __init__(self, scorer: Scorer):
        self.live = {k: v for k, v in scorer.state_dict().items() if not k.startswith("backbone.")}
        self.states: dict[str, dict[str, torch.Tensor]] = {BASE: {k: v.clone() for k, v in self.live.items()}}
        self.active: str | None = BASE

    def check(self, state: dict[str, torch.Tensor], where: str) -> None:
        """Refuse a head whose tensors do not fit the bank's scorer."""
        expected = {k: tuple(v.shape) for k, v in self.live.items()}
        found = {k: tuple(v.shape) for k, v in state.items()}
        if expected != found:
            raise CorruptAdapterError(
                f"the scorer head in {where} does not fit the bank's scorer (expected {expected}, found {found}); "
                "it was saved by a different scorer or scorer config"
            )

    def put(self, key: str, state: dict[str, torch.Tensor]) -> None:
        """Keep ``state`` as the head of ``key``."""
        self.states[key] = {k: v.detach().clone() for k, v in state.items()}
        if self.active == key:
            self.active = None

    def blend(self, key: str, parts: dict[str, float]) -> None:
        """The head of ``key`` = weighted average of the heads of ``parts`` (weights sum to one)."""
        total = sum(parts.values())
        self.put(key, {k: sum(self.states[p][k] * (w / total) for p, w in parts.items()) for k in self.live})

    @torch.no_grad()
    def activate(self, key: str) -> None:
        """Copy the head of ``key`` into the scorer."""
        if key == self.active:
            return
        for name, tensor in self.live.items():
            tensor.copy_(self.states[key][name])
        self.active = key


def make_slots(scorer: Scorer, method: Method) -> PeftSlots | StateSlots:
    """The slot kind for ``method``: peft named adapters when it saves in peft's format."""
    if "adapter_config.json" in method.weight_files():
        return PeftSlots(scorer, method)
    return StateSlots(scorer, method)
