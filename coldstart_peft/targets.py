"""Which layers a peft method adapts, per architecture.

The methods' defaults name BERT's layers (``query``, ``key``, ``value``, ``output.dense``). A
decoder calls its projections otherwise (Llama and Qwen ``q_proj`` … ``down_proj``, GPT-2
``c_attn`` and ``c_proj``, T5 ``q`` … ``o`` and ``wo``), so a default that matches nothing in the
model is replaced by the same layers under the architecture's names: the attention's query, key
and value for the LoRA family (query and value on T5, as peft's own table has it), key, value and
the feed-forward output for IA3. Names a user chose are never replaced; when they match no
layer, or the architecture is unknown, :class:`TargetModulesError`
lists the model's linear layers to choose from.
"""

from __future__ import annotations

import dataclasses

from torch import nn

from coldstart_peft.errors import ConfigError

_LLAMA_ATTENTION = ["q_proj", "k_proj", "v_proj"]
ATTENTION_TARGETS = {
    **{t: _LLAMA_ATTENTION for t in ("llama", "qwen2", "qwen3", "mistral", "mixtral", "gemma", "gemma2", "opt", "olmo", "smollm3")},
    "gpt2": ["c_attn"],
    "gpt_neox": ["query_key_value"],
    "falcon": ["query_key_value"],
    "phi3": ["qkv_proj"],
    **{t: ["q", "v"] for t in ("t5", "mt5", "umt5", "longt5")},  # peft's own choice for T5
}
"""The attention's query/key/value projections by ``model_type`` (LoRA, DoRA, AdaLoRA)."""

_LLAMA_IA3 = (["k_proj", "v_proj", "down_proj"], ["down_proj"])
IA3_TARGETS = {
    **{t: _LLAMA_IA3 for t in ("llama", "qwen2", "qwen3", "mistral", "mixtral", "gemma", "gemma2", "olmo", "smollm3")},
    "gpt2": (["c_attn", "mlp.c_proj"], ["mlp.c_proj"]),
    **{t: (["k", "v", "wo"], ["wo"]) for t in ("t5", "mt5", "umt5", "longt5")},
}
"""IA3's (target, feed-forward) modules by ``model_type``: key, value and the feed-forward output."""


class TargetModulesError(ConfigError):
    """A method's target modules match no layer of the model; the message lists the layers to choose from."""


def layer_names(model: nn.Module) -> list[str]:
    """The distinct last name parts of ``model``'s linear layers (``nn.Linear`` and GPT-2's ``Conv1D``)."""
    from transformers.pytorch_utils import Conv1D

    return sorted({name.rsplit(".", 1)[-1] for name, m in model.named_modules() if isinstance(m, (nn.Linear, Conv1D))})


def _matches(model: nn.Module, targets: list[str]) -> bool:
    names = [name for name, _ in model.named_modules()]
    return any(name == t or name.endswith("." + t) for t in targets for name in names)


def _default(config, field: str):
    for f in dataclasses.fields(config):
        if f.name == field:
            return f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
    return None


def fit_targets(peft_config, model: nn.Module, method_config):
    """``peft_config`` with its target modules made to fit ``model`` (in place; returned).

    Args:
        peft_config: what the method's ``to_peft()`` built.
        model: the base model the method is about to wrap.
        method_config: the method's config, whose field defaults tell chosen names from defaults.

    Raises:
        TargetModulesError: chosen names that match no layer, or an architecture without a known
            layout; the message lists the model's linear layers.
    """
    targets = getattr(peft_config, "target_modules", None)
    if not targets or isinstance(targets, str) or _matches(model, list(targets)):
        return peft_config
    model_type = getattr(getattr(model, "config", None), "model_type", None)
    is_default = set(targets) == set(_default(method_config, "target_modules") or [])  # peft keeps a set
    is_ia3 = hasattr(peft_config, "feedforward_modules")
    table = IA3_TARGETS if is_ia3 else ATTENTION_TARGETS
    if not is_default or model_type not in table:
        why = "match no layer of" if not is_default else "are BERT's names, and there is no default for"
        raise TargetModulesError(
            f"target_modules {list(targets)} {why} {type(model).__name__} (model type {model_type!r}); its linear "
            f"layers are {', '.join(layer_names(model))}. Pass the ones to adapt, e.g. "
            f"--method-config 'target_modules=[\"{layer_names(model)[0]}\"]'"
        )
    if is_ia3:
        peft_config.target_modules, peft_config.feedforward_modules = (list(x) for x in table[model_type])
    else:
        peft_config.target_modules = list(table[model_type])
    return peft_config
