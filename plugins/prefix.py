"""Prefix tuning through peft: trained key/value vectors prepended in every attention layer.

peft's encoder forward for prefix tuning does not reach BERT under transformers 5 (the cache
keyword was renamed) and drops the segment ids, so the forward runs through
:class:`~coldstart_peft_plugins._prompt_learning.PromptLearningBackbone`, which finds the
cache keyword from the base model's signature. The saved folder is peft's own format.
"""

from __future__ import annotations

import dataclasses

from peft import PrefixTuningConfig

from coldstart_peft import ConfigError, MethodConfig, hookimpl
from coldstart_peft_plugins._prompt_learning import PromptLearningMethod, cache_keyword


@dataclasses.dataclass
class PrefixMethodConfig(MethodConfig):
    """Settings of prefix tuning (peft ``PrefixTuningConfig``)."""

    num_virtual_tokens: int = dataclasses.field(
        default=20, metadata={"help": "prefix length: key/value vectors added per attention layer"}
    )

    def validate(self) -> None:
        if self.num_virtual_tokens < 1:
            raise ConfigError(f"num_virtual_tokens must be at least 1, got {self.num_virtual_tokens}")

    def to_peft(self) -> PrefixTuningConfig:
        """The equivalent peft config."""
        return PrefixTuningConfig(num_virtual_tokens=self.num_virtual_tokens, task_type="FEATURE_EXTRACTION")


class PrefixTuning(PromptLearningMethod):
    """Trained key/value prefixes in every attention layer (peft prefix tuning)."""

    name = "prefix"
    config_class = PrefixMethodConfig
    recommended_lr = 5e-3

    def check_architecture(self, model) -> None:
        cache_keyword(model)  # raises when the base model's forward takes no cache at all


@hookimpl
def register_methods(register):
    register(PrefixTuning)
