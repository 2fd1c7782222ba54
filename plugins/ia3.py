"""IA3 through peft: learned rescaling of keys, values and feed-forward activations.

About 16k parameters on MiniLM, the smallest weight-based method. IA3 rescales, so it merges
into the base weights exactly. The saved folder is peft's own format.
"""

from __future__ import annotations

import dataclasses

from peft import IA3Config

from coldstart_peft import ConfigError, MethodConfig, PeftMethod, hookimpl


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


class IA3(PeftMethod):
    """Learned rescaling of keys, values and feed-forward activations (peft IA3)."""

    name = "ia3"
    config_class = IA3MethodConfig
    # peft's IA3 layers take no per-sample adapter names, so one batch serves one adapter.
    supports_mixed_batches = False
    supports_merge = True
    recommended_lr = 5e-3



@hookimpl
def register_methods(register):
    register(IA3)
