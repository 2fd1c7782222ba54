"""Bottleneck adapters (Houlsby, Pfeiffer): small residual MLPs inserted after sub-layer outputs.

peft has no bottleneck adapters, so this module implements them. It is deliberately a small
standalone module rather than a peft ``BaseTuner``: peft's ``PeftType`` enum is closed, so a
tuner outside it cannot go through ``get_peft_model``/``PeftModel.from_pretrained`` or peft's
save format anyway, and registering one means patching peft's internal mappings, which breaks
with peft releases. What ``BaseTuner`` would add (several named adapters, disabling) is not
needed by the method contract, while placement, init and saving are a few dozen lines here.

Each adapter computes ``h + up(act(down(h)))`` on the output projection of a sub-layer, before
its dropout, residual and LayerNorm, as in Houlsby et al. (2019). ``houlsby`` places one after
the attention output and one after the feed-forward output of every layer; ``pfeiffer`` only
after the feed-forward output (Pfeiffer et al., 2020). The up-projection starts at
``init_scale`` (zero gives the exact identity), so training starts from the pretrained model.

The folder holds ``bottleneck_config.json`` and ``bottleneck.safetensors`` with the adapter
weights only.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from coldstart_peft import ConfigError, CorruptAdapterError, Method, MethodConfig, hookimpl

WEIGHTS = "bottleneck.safetensors"
CONFIG = "bottleneck_config.json"
PLACEMENTS = ("houlsby", "pfeiffer")
NONLINEARITIES = {"relu": nn.ReLU, "gelu": nn.GELU, "tanh": nn.Tanh, "silu": nn.SiLU}

# Module-name suffixes of (attention output projection, feed-forward output projection) per
# model_type. BERT-style encoders share one layout; Llama-style decoders another. In a pre-norm
# decoder block the adapter sits on the sub-layer's output before the residual add, as in BERT.
_BERT_LAYOUT = ("attention.output.dense", "output.dense")
_LLAMA_LAYOUT = ("self_attn.o_proj", "mlp.down_proj")
LAYOUTS = {
    **{t: _LLAMA_LAYOUT for t in ("llama", "qwen2", "qwen3", "mistral", "gemma", "gemma2", "olmo", "smollm3")},
    "gpt2": ("attn.c_proj", "mlp.c_proj"),  # transformers Conv1D layers, not nn.Linear
    "bert": _BERT_LAYOUT,
    "roberta": _BERT_LAYOUT,
    "xlm-roberta": _BERT_LAYOUT,
    "camembert": _BERT_LAYOUT,
    "electra": _BERT_LAYOUT,
    "distilbert": ("attention.out_lin", "ffn.lin2"),
}


class UnsupportedArchitectureError(ConfigError):
    """Bottleneck adapters do not know where to sit in this model; the message lists the supported ones."""


@dataclasses.dataclass
class BottleneckConfig(MethodConfig):
    """Settings of bottleneck adapters."""

    placement: str = dataclasses.field(
        default="houlsby", metadata={"help": "'houlsby' (after attention and feed-forward) or 'pfeiffer' (feed-forward only)"}
    )
    reduction_factor: int = dataclasses.field(default=16, metadata={"help": "bottleneck size = hidden size / this"})
    bottleneck_size: int | None = dataclasses.field(
        default=None, metadata={"help": "bottleneck width; overrides reduction_factor when set"}
    )
    nonlinearity: str = dataclasses.field(default="relu", metadata={"help": "relu, gelu, tanh or silu"})
    init_scale: float = dataclasses.field(
        default=1e-3, metadata={"help": "std of the initial up-projection; 0 starts at the exact identity"}
    )

    def validate(self) -> None:
        if self.placement not in PLACEMENTS:
            raise ConfigError(f"placement must be one of {', '.join(PLACEMENTS)}, got {self.placement!r}")
        if self.reduction_factor < 1:
            raise ConfigError(f"reduction_factor must be at least 1, got {self.reduction_factor}")
        if self.bottleneck_size is not None and self.bottleneck_size < 1:
            raise ConfigError(f"bottleneck_size must be at least 1, got {self.bottleneck_size}")
        if self.nonlinearity not in NONLINEARITIES:
            raise ConfigError(f"nonlinearity must be one of {', '.join(NONLINEARITIES)}, got {self.nonlinearity!r}")
        if self.init_scale < 0:
            raise ConfigError(f"init_scale must be non-negative, got {self.init_scale}")

    def width(self, hidden_size: int) -> int:
        """The bottleneck width for a model of ``hidden_size``."""
        return self.bottleneck_size or max(1, hidden_size // self.reduction_factor)


class BottleneckAdapter(nn.Module):
    """``h + up(act(down(h)))``: a residual two-layer MLP through a narrow bottleneck."""

    def __init__(self, hidden_size: int, width: int, nonlinearity: str, init_scale: float):
        super().__init__()
        self.down = nn.Linear(hidden_size, width)
        self.act = NONLINEARITIES[nonlinearity]()
        self.up = nn.Linear(width, hidden_size)
        nn.init.normal_(self.up.weight, std=init_scale)
        nn.init.zeros_(self.up.bias)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return hidden + self.up(self.act(self.down(hidden)))


class AdaptedProjection(nn.Module):
    """A sub-layer's output projection followed by its bottleneck adapter."""

    def __init__(self, projection: nn.Linear, adapter: BottleneckAdapter):
        super().__init__()
        self.projection = projection
        self.adapter = adapter

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.adapter(self.projection(hidden))


def layout(model: nn.Module) -> tuple[str, str]:
    """Module-name suffixes of the (attention, feed-forward) output projections of ``model``.

    Raises:
        UnsupportedArchitectureError: the model's type has no known layout.
    """
    model_type = getattr(getattr(model, "config", None), "model_type", None)
    if model_type not in LAYOUTS:
        raise UnsupportedArchitectureError(
            f"bottleneck adapters do not support model type {model_type!r} ({type(model).__name__}); "
            f"supported: {', '.join(sorted(LAYOUTS))}. Use lora, ia3 or prompt for other architectures"
        )
    return LAYOUTS[model_type]


def target_names(model: nn.Module, placement: str) -> list[str]:
    """Names of the output projections that receive an adapter under ``placement``."""
    from transformers.pytorch_utils import Conv1D

    attention, feed_forward = layout(model)
    names = []
    for name, module in model.named_modules():
        if not isinstance(module, (nn.Linear, Conv1D)):
            continue
        # Checked first because BERT's feed-forward suffix "output.dense" also ends the attention one.
        if name.endswith("." + attention):
            if placement == "houlsby":
                names.append(name)
        elif name.endswith("." + feed_forward):
            names.append(name)
    return names


def add_adapters(model: nn.Module, config: BottleneckConfig) -> list[str]:
    """Insert bottleneck adapters into ``model`` in place; return the adapted module names."""
    names = target_names(model, config.placement)
    if not names:
        raise UnsupportedArchitectureError(
            f"no output projection of {type(model).__name__} matches {layout(model)}; the model does not "
            "have the layout its model type promises"
        )
    hidden = model.config.hidden_size
    for name in names:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name)
        projection = getattr(parent, child)
        adapter = BottleneckAdapter(hidden, config.width(hidden), config.nonlinearity, config.init_scale)
        adapter.to(device=projection.weight.device, dtype=projection.weight.dtype)
        setattr(parent, child, AdaptedProjection(projection, adapter))
    return names


def adapter_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """The adapter weights of ``model`` (and nothing of the base model)."""
    return {k: v for k, v in model.state_dict().items() if ".adapter." in k}


class Bottleneck(Method):
    """Houlsby/Pfeiffer bottleneck adapters after sub-layer outputs (standalone, not in peft)."""

    name = "bottleneck"
    config_class = BottleneckConfig
    supports_mixed_batches = False
    # The adapter is nonlinear, so it cannot be folded into the linear weights.
    supports_merge = False

    def prepare(self, model, config, *, total_steps=None):
        add_adapters(model, config)
        return model

    def save(self, model, directory: Path) -> None:
        directory = Path(directory)
        save_file({k: v.detach().contiguous().cpu() for k, v in adapter_state_dict(model).items()}, str(directory / WEIGHTS))
        (directory / CONFIG).write_text(json.dumps(self.config.to_dict(), indent=2), encoding="utf-8")

    def load(self, model, directory: Path):
        directory = Path(directory)
        try:
            saved = json.loads((directory / CONFIG).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise CorruptAdapterError(f"cannot read {directory / CONFIG} ({exc}); save the adapter again") from exc
        try:
            config = self.config_class(**saved)
        except TypeError as exc:
            raise CorruptAdapterError(f"{directory / CONFIG} is not a bottleneck config ({exc})") from exc
        config.validate()
        add_adapters(model, config)
        state = load_file(str(directory / WEIGHTS))
        expected = set(adapter_state_dict(model))
        if set(state) != expected:
            raise CorruptAdapterError(
                f"{directory / WEIGHTS} holds {len(state)} adapter tensors but the model expects "
                f"{len(expected)}; it was saved for a different base model or placement"
            )
        model.load_state_dict(state, strict=False)
        for name, parameter in model.named_parameters():
            if ".adapter." in name:
                parameter.requires_grad_(False)
        return model

    def weight_files(self) -> list[str]:
        return [WEIGHTS, CONFIG]


@hookimpl
def register_methods(register):
    register(Bottleneck)
