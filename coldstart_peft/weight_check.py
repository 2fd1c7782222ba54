"""Check a peft adapter's saved tensors against what its config needs, so half an adapter never scores.

peft loads ``adapter_model.safetensors`` with ``strict=False`` and only warns about missing
keys: a file with every ``lora_B`` removed, or no tensor at all, loads and leaves those
weights at their initial values, so the "adapter" scores like the bare base model. What the
config needs is what peft itself would save for the model it built from that config
(``get_peft_model_state_dict``), so that is the reference: every name present, with the same
shape and dtype, and nothing else. The file's names, shapes and dtypes come from its header,
without reading the tensors.
"""

from __future__ import annotations

import copy
from pathlib import Path

import torch
from peft import PeftModel, get_peft_model_state_dict
from safetensors import SafetensorError, safe_open
from torch import nn

from coldstart_peft.errors import CorruptAdapterError

PEFT_WEIGHTS = "adapter_model.safetensors"
SHOWN = 5
"""How many offending names a message lists; the count covers all of them."""

_DTYPES = {
    torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16", torch.float64: "F64",
    torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8", torch.uint8: "U8", torch.bool: "BOOL",
}  # fmt: skip

Signature = tuple[tuple[int, ...], str]


def saved_signatures(path: Path) -> dict[str, Signature]:
    """Name -> (shape, dtype) of every tensor in a safetensors file, read from its header only.

    Raises:
        CorruptAdapterError: the file is missing or its header is unreadable.
    """
    try:
        with safe_open(str(path), framework="pt") as handle:
            return {name: (tuple(handle.get_slice(name).get_shape()), handle.get_slice(name).get_dtype())
                    for name in handle.keys()}  # fmt: skip
    except (SafetensorError, OSError, ValueError) as exc:
        raise CorruptAdapterError(f"{path} is not a readable safetensors file ({exc}); save the adapter again") from exc


def find_peft_model(model: nn.Module) -> PeftModel | None:
    """The peft model inside ``model`` (itself, or wrapped as prompt learning wraps it), or ``None``."""
    return next((module for module in model.modules() if isinstance(module, PeftModel)), None)


def expected_signatures(peft_model: PeftModel) -> dict[str, Signature]:
    """Name -> (shape, dtype) of the tensors peft saves for ``peft_model``'s active adapter."""
    config = peft_model.peft_config[peft_model.active_adapter]
    pattern = copy.deepcopy(getattr(config, "rank_pattern", None))
    try:
        state = get_peft_model_state_dict(peft_model, adapter_name=peft_model.active_adapter)
    finally:
        if hasattr(config, "rank_pattern"):  # AdaLoRA's state-dict export renames the pattern's keys in place
            config.rank_pattern = pattern
    return {name: (tuple(t.shape), _DTYPES.get(t.dtype, str(t.dtype))) for name, t in state.items()}


def compare(expected: dict[str, Signature], saved: dict[str, Signature]) -> list[str]:
    """One line per problem: a missing tensor, an unexpected one, a shape or dtype that differs."""
    problems = [f"missing {name}" for name in sorted(set(expected) - set(saved))]
    problems += [f"unexpected {name}" for name in sorted(set(saved) - set(expected))]
    for name in sorted(set(expected) & set(saved)):
        (want_shape, want_dtype), (shape, dtype) = expected[name], saved[name]
        if want_shape != shape or want_dtype != dtype:
            problems.append(f"{name} is {list(shape)} {dtype}, expected {list(want_shape)} {want_dtype}")
    return problems


def check_peft_weights(model: nn.Module, directory: Path) -> None:
    """Raise unless the peft adapter file in ``directory`` holds exactly the tensors ``model`` needs.

    Args:
        model: the backbone the method loaded the adapter onto; models without peft inside
            (full fine-tuning, bottleneck adapters) are left to their method's own strict load.
        directory: the adapter folder.

    Raises:
        CorruptAdapterError: naming the missing, unexpected or mismatched tensors.
    """
    peft_model = find_peft_model(model)
    path = Path(directory) / PEFT_WEIGHTS
    if peft_model is None or not path.is_file():
        return
    problems = compare(expected_signatures(peft_model), saved_signatures(path))
    if problems:
        shown = "; ".join(problems[:SHOWN]) + (f"; and {len(problems) - SHOWN} more" if len(problems) > SHOWN else "")
        raise CorruptAdapterError(
            f"{path} does not hold the adapter its config describes ({len(problems)} problems: {shown}); "
            "it is incomplete or was edited. Restore it from the original, or train and save the adapter again"
        )
