"""Prompt tuning through peft: trained embeddings of virtual tokens placed before the input.

The smallest method here (``num_virtual_tokens × hidden`` parameters). The forward runs through
:class:`~coldstart_peft_plugins._prompt_learning.PromptLearningBackbone`, which keeps the segment
ids and trims the virtual positions from the output, so pooling in the scorer is unchanged.
The saved folder is peft's own format.
"""

from __future__ import annotations

import dataclasses

from peft import PromptTuningConfig

from coldstart_peft import ConfigError, MethodConfig, hookimpl
from coldstart_peft_plugins._prompt_learning import PromptLearningMethod

INITS = ("sample_vocab", "random")


@dataclasses.dataclass
class PromptMethodConfig(MethodConfig):
    """Settings of prompt tuning (peft ``PromptTuningConfig``)."""

    num_virtual_tokens: int = dataclasses.field(default=20, metadata={"help": "virtual tokens placed before the input"})
    init: str = dataclasses.field(
        default="sample_vocab",
        metadata={"help": "'sample_vocab' (embeddings of random vocabulary tokens, the right scale) or 'random'"},
    )

    def validate(self) -> None:
        if self.num_virtual_tokens < 1:
            raise ConfigError(f"num_virtual_tokens must be at least 1, got {self.num_virtual_tokens}")
        if self.init not in INITS:
            raise ConfigError(f"init must be one of {', '.join(INITS)}, got {self.init!r}")

    def to_peft(self) -> PromptTuningConfig:
        """The equivalent peft config."""
        return PromptTuningConfig(
            num_virtual_tokens=self.num_virtual_tokens,
            prompt_tuning_init=self.init.upper(),
            task_type="FEATURE_EXTRACTION",
        )


class PromptTuning(PromptLearningMethod):
    """Trained virtual-token embeddings before every input (peft prompt tuning)."""

    name = "prompt"
    config_class = PromptMethodConfig
    recommended_lr = 1e-2


@hookimpl
def register_methods(register):
    register(PromptTuning)
