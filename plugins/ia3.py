"""IA3 through peft: learned rescaling of keys, values and feed-forward activations.

About 16k parameters on MiniLM, the smallest weight-based method. IA3 rescales, so it merges
into the base weights exactly. The saved folder is peft's own format.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from peft import IA3Config, PeftModel, get_peft_model

from coldstart_peft import ConfigError, Method, MethodConfig, hookimpl

PEFT_FILES = ["adapter_config.json", "adapter_model.safetensors"]


@dataclasses.dataclass
class IA3MethodConfig(MethodConfig):
    """Settings of IA3 (peft ``IA3Config``)."""

    target_modules: list[str] = dataclasses.field(
        default_factory=lambda: ["key", "value", "output.dense"],
        metadata={"help": "layers whose activations are rescaled (BERT: key, value, output.dense)"},
    )
    feedforward_modules: list[str] = dataclasses.field(
        default_factory=lambda: ["output.dense"],
        metadata={"help": "targets rescaled on their input rather than their output; a subset of target_modules"},
    )

    def validate(self) -> None:
        if not self.target_modules:
            raise ConfigError("IA3 needs at least one target module, e.g. ['key', 'value', 'output.dense']")
        stray = sorted(set(self.feedforward_modules) - set(self.target_modules))
        if stray:
            raise ConfigError(f"feedforward_modules {stray} are not in target_modules {self.target_modules}")

    def to_peft(self) -> IA3Config:
        """The equivalent peft config."""
        return IA3Config(
            target_modules=list(self.target_modules),
            feedforward_modules=list(self.feedforward_modules),
            task_type="FEATURE_EXTRACTION",
        )


class IA3(Method):
    """Learned rescaling of keys, values and feed-forward activations (peft IA3)."""

    name = "ia3"
    config_class = IA3MethodConfig
    # peft's IA3 layers take no per-sample adapter names, so one batch serves one adapter.
    supports_mixed_batches = False
    supports_merge = True
    recommended_lr = 5e-3

    def prepare(self, model, config, *, total_steps=None):
        return get_peft_model(model, config.to_peft())

    def save(self, model, directory: Path) -> None:
        model.save_pretrained(str(directory), safe_serialization=True)

    def load(self, model, directory: Path):
        return PeftModel.from_pretrained(model, str(directory), is_trainable=False)

    def merge(self, model):
        return model.merge_and_unload()

    def weight_files(self) -> list[str]:
        return list(PEFT_FILES)


@hookimpl
def register_methods(register):
    register(IA3)
