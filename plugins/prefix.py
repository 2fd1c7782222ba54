"""Prefix tuning through peft: trained key/value vectors prepended in every attention layer.

peft's encoder forward for prefix tuning does not reach BERT under transformers 5 (the cache
keyword was renamed) and drops the segment ids, so the forward runs through
:class:`~coldstart_peft_plugins._prompt_learning.PromptLearningBackbone`, which finds the
cache keyword from the base model's signature. The saved folder is peft's own format.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from peft import PrefixTuningConfig, get_peft_model

from coldstart_peft import ConfigError, Method, MethodConfig, hookimpl
from coldstart_peft_plugins._prompt_learning import (
    PEFT_FILES,
    PromptLearningBackbone,
    cache_keyword,
    check_virtual_tokens,
    load_prompt_learning,
    save_prompt_learning,
)


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


class PrefixTuning(Method):
    """Trained key/value prefixes in every attention layer (peft prefix tuning)."""

    name = "prefix"
    config_class = PrefixMethodConfig
    # peft serves several adapters per batch only for LoRA-family layers, and a merge has no
    # weights to fold the prefix into.
    supports_mixed_batches = False
    supports_merge = False
    recommended_lr = 5e-3

    def prepare(self, model, config, *, total_steps=None):
        check_virtual_tokens(model, config.num_virtual_tokens)
        cache_keyword(model)  # fail before wrapping when the architecture cannot take a prefix
        return PromptLearningBackbone(get_peft_model(model, config.to_peft()))

    def save(self, model, directory: Path) -> None:
        save_prompt_learning(model, directory)

    def load(self, model, directory: Path):
        return load_prompt_learning(model, directory)

    def weight_files(self) -> list[str]:
        return list(PEFT_FILES)


@hookimpl
def register_methods(register):
    register(PrefixTuning)
