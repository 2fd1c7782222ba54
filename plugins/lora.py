"""LoRA through peft: low-rank updates on the attention projections, saved in peft's format.

The saved folder (``adapter_config.json`` + ``adapter_model.safetensors``) also loads with
plain ``PeftModel.from_pretrained(AutoModel.from_pretrained(base), folder)``.
"""

from __future__ import annotations

import dataclasses

from peft import LoraConfig

from coldstart_peft import ConfigError, MethodConfig, PeftMethod, hookimpl


@dataclasses.dataclass
class LoraMethodConfig(MethodConfig):
    """Settings of LoRA (peft ``LoraConfig``)."""

    r: int = dataclasses.field(default=8, metadata={"help": "rank of the update matrices"})
    alpha: int = dataclasses.field(default=16, metadata={"help": "scaling numerator: update is (alpha/r)·BA"})
    # 0: at equal training time on Beauty validation users, 0.05 scored the same NDCG@10 (0.4426 vs
    # 0.4427) in 20% fewer steps; peft draws one mask per adapted projection, a fifth of a CPU step
    # (benchmarks/results/dropout-choice).
    dropout: float = dataclasses.field(default=0.0, metadata={"help": "dropout on the LoRA input"})
    target_modules: list[str] = dataclasses.field(
        default_factory=lambda: ["query", "key", "value"],
        metadata={"help": "names of the linear layers to adapt (BERT: query, key, value, dense)"},
    )
    use_dora: bool = dataclasses.field(default=False, metadata={"help": "must stay false: DoRA is the 'dora' method"})
    loraplus_lr_ratio: float = dataclasses.field(
        default=1.0,
        metadata={"help": "LoRA+ (Hayou et al., 2024): the B matrices train at this many times the learning rate "
                          "of the A matrices (1: plain LoRA; the paper suggests 16, with a lower learning rate)"},
    )

    def validate(self) -> None:
        if self.r < 1:
            raise ConfigError(f"LoRA rank r must be at least 1, got {self.r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"LoRA dropout must be in [0, 1), got {self.dropout}")
        if not self.loraplus_lr_ratio > 0:
            raise ConfigError(f"loraplus_lr_ratio must be positive (1 for plain LoRA), got {self.loraplus_lr_ratio}")
        if not self.target_modules:
            raise ConfigError("LoRA needs at least one target module, e.g. ['query', 'value']")
        # DoRA cannot serve mixed-adapter batches, which 'lora' promises; it is its own method.
        if self.use_dora and type(self) is LoraMethodConfig:
            raise ConfigError("use_dora is not a LoRA option here; use the 'dora' method for weight-decomposed LoRA")

    def to_peft(self) -> LoraConfig:
        """The equivalent peft config."""
        return LoraConfig(
            r=self.r,
            lora_alpha=self.alpha,
            lora_dropout=self.dropout,
            target_modules=list(self.target_modules),
            use_dora=self.use_dora,
            task_type="FEATURE_EXTRACTION",
        )


class Lora(PeftMethod):
    """Low-rank adaptation of the attention projections (peft LoRA)."""

    name = "lora"
    config_class = LoraMethodConfig
    supports_mixed_batches = True
    supports_merge = True
    # Chosen on Beauty's validation users at the cpu preset's 240 s per method
    # (benchmarks/results/levers-lr-*-240s): 1e-3 beat 2e-3 on cold users (0.471 against 0.466
    # NDCG@10; 4e-3 0.460) and cold items (0.311 against 0.305). At 150 s 2e-3 had won both: the
    # best step shrank as training lengthened, as it did for LoRA without priors (8e-3 to 4e-3).
    recommended_lr = 1e-3

    def learning_rate_scale(self, name: str) -> float:
        # peft names the up-projection of every adapted layer "lora_B"; LoRA+ speeds up only those.
        return self.config.loraplus_lr_ratio if ".lora_B." in name else 1.0


@hookimpl
def register_methods(register):
    register(Lora)
