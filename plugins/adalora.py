"""AdaLoRA through peft: LoRA whose rank budget moves to the matrices that matter during training.

peft's AdaLoRA only adapts when three things happen that a generic training loop does not do,
which is why it so often trains as plain LoRA by accident:

* its schedule needs the number of optimizer steps up front (``total_step``): here it comes
  from the engine through ``prepare(..., total_steps=...)`` and is never asked of the user;
  the warm-up, final and allocation intervals are shares of it, so short runs still reallocate;
* ``update_and_allocate(step)`` must run after each optimizer step while the gradients are
  still there (it scores importance from them): :meth:`AdaLora.on_step` does it, and the
  engine calls it before clearing the gradients;
* the orthogonality penalty is added to ``outputs.loss`` only by models that compute a loss;
  an encoder does not, so :meth:`AdaLora.regularization` returns it to the engine, which adds
  it to the loss it optimises and still reports the task loss on its own.

The saved folder is peft's own format: the pruned matrices plus ``rank_pattern`` in
``adapter_config.json``, which peft uses to rebuild each layer at its final rank.
"""

from __future__ import annotations

import dataclasses
import warnings
from pathlib import Path

import torch
from peft import AdaLoraConfig, PeftModel, get_peft_model

from coldstart_peft import ConfigError, MethodConfig, PeftMethod, hookimpl
from coldstart_peft.targets import fit_targets

ADAPTER = "default"


@dataclasses.dataclass
class AdaLoraMethodConfig(MethodConfig):
    """Settings of AdaLoRA (peft ``AdaLoraConfig``); the schedule scales with the engine's step count."""

    init_r: int = dataclasses.field(default=12, metadata={"help": "starting rank of every adapted matrix"})
    target_r: int = dataclasses.field(default=8, metadata={"help": "average rank left after reallocation"})
    alpha: int = dataclasses.field(
        default=256,
        metadata={
            "help": "scaling numerator: update is (alpha/init_r)·B·diag(E)·A; with orthonormal A and B a "
            "singular value moves about lr·alpha/init_r per step, and 256 matches LoRA's pace (r=8, alpha=16)"
        },
    )
    dropout: float = dataclasses.field(default=0.05, metadata={"help": "dropout on the adapter input"})
    target_modules: list[str] = dataclasses.field(
        default_factory=lambda: ["query", "key", "value"],
        metadata={"help": "names of the linear layers to adapt (BERT: query, key, value, dense)"},
    )
    warmup_share: float = dataclasses.field(
        default=0.1, metadata={"help": "share of steps trained at init_r before pruning starts (peft tinit)"}
    )
    final_share: float = dataclasses.field(
        default=0.2, metadata={"help": "share of steps trained at the final ranks (peft tfinal)"}
    )
    allocations: int = dataclasses.field(
        default=10, metadata={"help": "rank reallocations during the pruning phase (sets peft deltaT)"}
    )
    beta1: float = dataclasses.field(default=0.85, metadata={"help": "EMA factor of the importance score"})
    beta2: float = dataclasses.field(default=0.85, metadata={"help": "EMA factor of the importance uncertainty"})
    orth_reg_weight: float = dataclasses.field(
        default=0.1, metadata={"help": "weight of the orthogonality penalty added to the training loss (paper: 0.1)"}
    )
    orthogonal_init: bool = dataclasses.field(
        default=True,
        metadata={
            "help": "start the singular vectors (lora_A, lora_B) orthonormal, where the penalty drives them, "
            "so the singular values learn from the first step; False keeps peft's N(0, 0.02)"
        },
    )

    def validate(self) -> None:
        if not 1 <= self.target_r <= self.init_r:
            raise ConfigError(f"need 1 <= target_r <= init_r, got target_r={self.target_r}, init_r={self.init_r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"AdaLoRA dropout must be in [0, 1), got {self.dropout}")
        if not self.target_modules:
            raise ConfigError("AdaLoRA needs at least one target module, e.g. ['query', 'value']")
        if self.warmup_share < 0 or self.final_share < 0 or self.warmup_share + self.final_share >= 1.0:
            raise ConfigError(
                f"warmup_share and final_share must be non-negative and leave a pruning phase "
                f"(sum below 1), got {self.warmup_share} and {self.final_share}"
            )
        if self.allocations < 1:
            raise ConfigError(f"allocations must be at least 1, got {self.allocations}")
        if self.orth_reg_weight < 0:
            raise ConfigError(f"orth_reg_weight must be non-negative, got {self.orth_reg_weight}")

    def schedule(self, total_steps: int) -> dict[str, int]:
        """peft's ``tinit``, ``tfinal`` and ``deltaT`` for a run of ``total_steps`` optimizer steps.

        Raises:
            ConfigError: the run is too short to score importance before the final allocation.
        """
        # Importance is scored on steps before total - tfinal; the first score needs one step.
        if total_steps < 3:
            raise ConfigError(
                f"AdaLoRA needs at least 3 optimizer steps to reallocate ranks, the run has {total_steps}; "
                "train longer or use the lora method"
            )
        tinit = int(self.warmup_share * total_steps)
        tfinal = min(int(self.final_share * total_steps), total_steps - tinit - 2)
        delta_t = max(1, (total_steps - tinit - tfinal) // self.allocations)
        return {"tinit": tinit, "tfinal": tfinal, "deltaT": delta_t}

    def to_peft(self, total_steps: int) -> AdaLoraConfig:
        """The equivalent peft config for a run of ``total_steps`` optimizer steps."""
        return AdaLoraConfig(
            init_r=self.init_r,
            target_r=self.target_r,
            lora_alpha=self.alpha,
            lora_dropout=self.dropout,
            target_modules=list(self.target_modules),
            beta1=self.beta1,
            beta2=self.beta2,
            orth_reg_weight=self.orth_reg_weight,
            total_step=total_steps,
            task_type="FEATURE_EXTRACTION",
            **self.schedule(total_steps),
        )


def live_rank_pattern(model: PeftModel) -> dict[str, list[bool]]:
    """The ranks in use: for every adapted matrix, which singular values are non-zero.

    Keys are named like the allocator's (``encoder.layer.0.attention.self.query.lora_E.default``).
    """
    return {
        name: (parameter.detach().view(-1) != 0).tolist()
        for name, parameter in model.base_model.model.named_parameters()
        if name.endswith(f"lora_E.{ADAPTER}")
    }


def orthonormalize(model: PeftModel) -> None:
    """Make every adapter's ``lora_A`` rows and ``lora_B`` columns orthonormal.

    peft draws both from N(0, 0.02) with the singular values at zero, so the update starts as a
    product of three small factors and barely moves in a short run. Orthonormal factors leave
    the initial update at zero (the singular values still are) while the singular values get
    gradients of unit scale from the first step.
    """
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if name.endswith(f"lora_A.{ADAPTER}") or name.endswith(f"lora_B.{ADAPTER}"):
                torch.nn.init.orthogonal_(parameter)


class AdaLora(PeftMethod):
    """LoRA with an adaptive rank budget: importance-based pruning moves rank to where it helps (peft AdaLoRA)."""

    name = "adalora"
    config_class = AdaLoraMethodConfig
    # peft's AdaLoRA layers take no per-sample adapter names; the update is linear, so it merges.
    supports_mixed_batches = False
    supports_merge = True

    def prepare(self, model, config, *, total_steps=None):
        if total_steps is None:
            raise ConfigError(
                "AdaLoRA's rank schedule needs the number of optimizer steps; pass total_steps to "
                "apply_method (coldstart_peft.training.plan_steps computes it from the data and TrainConfig)"
            )
        model = get_peft_model(model, fit_targets(config.to_peft(total_steps), model, config))
        if config.orthogonal_init:
            orthonormalize(model)
        return model

    def on_step(self, model, step: int) -> None:
        model.base_model.update_and_allocate(step)

    def regularization(self, model) -> torch.Tensor | None:
        # peft's AdaLoraModel.forward adds the same term to outputs.loss, which an encoder lacks.
        weight = model.peft_config[ADAPTER].orth_reg_weight
        if not weight:
            return None
        penalties = []
        for name, parameter in model.named_parameters():
            if parameter.requires_grad and ("lora_A" in name or "lora_B" in name):
                gram = parameter @ parameter.T if "lora_A" in name else parameter.T @ parameter
                eye = torch.eye(*gram.shape, device=gram.device, dtype=gram.dtype)
                penalties.append(torch.linalg.matrix_norm(gram - eye))
        return weight * torch.stack(penalties).mean() if penalties else None

    def state_dict(self, model) -> dict[str, torch.Tensor]:
        # The allocator's smoothed importance scores steer every later reallocation, and the
        # rank pattern is what save() would otherwise fall back from; both must survive a resume.
        allocator = model.base_model.rankallocator
        state = {}
        for prefix, scores in (("ipt", allocator.ipt), ("exp_avg_ipt", allocator.exp_avg_ipt), ("exp_avg_unc", allocator.exp_avg_unc)):
            state.update({f"{prefix}/{name}": tensor for name, tensor in scores.items()})
        pattern = model.peft_config[ADAPTER].rank_pattern or {}
        state.update({f"rank_pattern/{name}": torch.tensor(mask, dtype=torch.bool) for name, mask in pattern.items()})
        return state

    def load_state_dict(self, model, state: dict[str, torch.Tensor]) -> None:
        allocator = model.base_model.rankallocator
        scores = {"ipt": allocator.ipt, "exp_avg_ipt": allocator.exp_avg_ipt, "exp_avg_unc": allocator.exp_avg_unc}
        pattern = {}
        for key, tensor in state.items():
            prefix, _, name = key.partition("/")
            if prefix == "rank_pattern":
                pattern[name] = tensor.tolist()
            else:
                scores[prefix][name] = tensor.to(next(model.parameters()).device)
        if pattern:
            model.peft_config[ADAPTER].rank_pattern = pattern

    def save(self, model, directory: Path) -> None:
        # peft writes only the ranks in the config's rank_pattern. The allocator's last pattern
        # can disagree with the live weights (a run that stopped between allocations, the engine
        # restoring an earlier best state), so the pattern saved is read off the weights: a rank
        # is kept exactly when its singular value is non-zero. After a full run this is the
        # allocator's final pattern, and the reloaded adapter always scores like the live model.
        config = model.peft_config[ADAPTER]
        allocated = config.rank_pattern
        config.rank_pattern = live_rank_pattern(model)
        try:
            model.save_pretrained(str(directory), safe_serialization=True)
        finally:
            config.rank_pattern = allocated  # training may go on with the allocator's own pattern

    def load(self, model, directory: Path):
        with warnings.catch_warnings():
            # peft's generic per-module-rank check reads AdaLoRA's rank_pattern as LoRA's and warns
            # that its keys match no module; AdaLoRA then applies the pattern itself.
            warnings.filterwarnings("ignore", message="The following rank_pattern keys did not match")
            return super().load(model, directory)


@hookimpl
def register_methods(register):
    register(AdaLora)
