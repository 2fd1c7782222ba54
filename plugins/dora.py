"""DoRA through peft: LoRA with the weight split into magnitude and direction (``use_dora``).

It shares LoRA's settings and save format; only the decomposition is forced on. peft's
mixed-adapter batches exclude DoRA layers, so unlike LoRA it serves one adapter per batch.
"""

from __future__ import annotations

import dataclasses

from coldstart_peft import ConfigError, hookimpl
from coldstart_peft_plugins.lora import Lora, LoraMethodConfig


@dataclasses.dataclass
class DoraMethodConfig(LoraMethodConfig):
    """Settings of DoRA: LoRA's, with the weight decomposition always on."""

    use_dora: bool = dataclasses.field(default=True, metadata={"help": "always true for DoRA (use 'lora' for plain LoRA)"})

    def validate(self) -> None:
        super().validate()
        if not self.use_dora:
            raise ConfigError("the dora method always decomposes the weights; for plain LoRA use the 'lora' method")


class Dora(Lora):
    """Weight-decomposed low-rank adaptation of the attention projections (peft DoRA)."""

    name = "dora"
    config_class = DoraMethodConfig
    supports_mixed_batches = False
    supports_merge = True
    recommended_lr = 1e-3  # LoRA's rate, chosen for LoRA; DoRA was not measured on its own


@hookimpl
def register_methods(register):
    register(Dora)
