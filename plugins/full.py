"""Full fine-tuning: every backbone weight trains; the whole encoder is saved with safetensors.

The reference point for the parameter-efficient methods: the most capacity, the largest
artifact (the full model per domain), and no adapter switching.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from safetensors.torch import load_model, save_model

from coldstart_peft import Method, MethodConfig, hookimpl

WEIGHTS = "model.safetensors"


@dataclasses.dataclass
class FullConfig(MethodConfig):
    """Full fine-tuning has no settings of its own; the learning rate is the engine's."""


class FullFineTuning(Method):
    """Train every weight of the backbone (the baseline PEFT methods are measured against)."""

    name = "full"
    config_class = FullConfig
    supports_mixed_batches = False
    supports_merge = False
    # Chosen on Beauty's validation users at the cpu preset's 240 s (benchmarks/results/levers-lr-full-*):
    # 5e-5 against 1e-4, 0.4747 against 0.4707 NDCG@10 on cold users and 0.3103 against 0.3099 on
    # cold items, both inside their paired intervals; 2e-4 lost on cold users (0.4685).
    recommended_lr = 5e-5

    def prepare(self, model, config, *, total_steps=None):
        for parameter in model.parameters():
            parameter.requires_grad_(True)
        return model

    def save(self, model, directory: Path) -> None:
        save_model(model, str(Path(directory) / WEIGHTS))

    def load(self, model, directory: Path):
        missing, unexpected = load_model(model, str(Path(directory) / WEIGHTS), strict=True)
        return model

    def weight_files(self) -> list[str]:
        return [WEIGHTS]


@hookimpl
def register_methods(register):
    register(FullFineTuning)
