"""Base class for methods that are thin wrappers around a peft tuner.

Such a method's config builds the peft config (``to_peft()``); everything else — wrapping,
saving in peft's own format, loading onto a fresh base model, merging — is the same for every
peft tuner, so it lives here once and a plugin only adds what differs.
"""

from __future__ import annotations

from pathlib import Path

from peft import PeftConfig, PeftModel, get_peft_model
from torch import nn

from coldstart_peft.method import Method, MethodConfig
from coldstart_peft.targets import fit_targets

PEFT_FILES = ("adapter_config.json", "adapter_model.safetensors")
"""What ``save_pretrained`` writes: the files ``PeftModel.from_pretrained`` reads back."""


class PeftMethod(Method):
    """A method whose config has ``to_peft()`` returning a peft config.

    Example:
        >>> class IA3(PeftMethod):
        ...     name = "ia3"
        ...     config_class = IA3MethodConfig  # with to_peft() -> peft.IA3Config
    """

    def prepare(self, model: nn.Module, config: MethodConfig, *, total_steps: int | None = None) -> nn.Module:
        # A default naming BERT's layers is translated for a decoder (see coldstart_peft.targets).
        return get_peft_model(model, fit_targets(config.to_peft(), model, config))

    def save(self, model: nn.Module, directory: Path) -> None:
        model.save_pretrained(str(directory), safe_serialization=True)

    def load(self, model: nn.Module, directory: Path) -> nn.Module:
        # The folder names its base portably (a hub id); peft would ask the hub about a base named so
        # (has its vocabulary changed?), so the config names the local model given here instead.
        config = PeftConfig.from_pretrained(str(directory))
        config.base_model_name_or_path = getattr(model, "name_or_path", None) or config.base_model_name_or_path
        return PeftModel.from_pretrained(model, str(directory), config=config, is_trainable=False)

    def merge(self, model: nn.Module) -> nn.Module:
        if not self.supports_merge:
            return super().merge(model)
        return model.merge_and_unload()

    def merge_in_place(self, model: nn.Module) -> bool:
        if not self.supports_merge:
            return False
        model.merge_adapter()
        return True

    def unmerge_in_place(self, model: nn.Module) -> None:
        model.unmerge_adapter()

    def weight_files(self) -> list[str]:
        return list(PEFT_FILES)
