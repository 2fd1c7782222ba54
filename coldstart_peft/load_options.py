"""Options passed through to ``from_pretrained`` when the base model loads.

A multi-billion-parameter backbone must not need twice its size in memory: load it in the
precision it is stored in (``dtype=bfloat16``), placed straight onto the devices
(``device_map=auto``, which needs accelerate), never materialised in float32 on the CPU first
(``low_cpu_mem_usage``, which transformers 5 always does). Only these keys are accepted, so a
typo fails before minutes of loading rather than deep inside transformers.

The options a scorer was built with are recorded in its adapter's manifest, so loading the
adapter later puts the base model in the same precision and places it the same way, unless the
caller overrides a key (:func:`merged_load_options`).
"""

from __future__ import annotations

from typing import Any

from coldstart_peft.errors import ConfigError

LOAD_OPTIONS = ("dtype", "low_cpu_mem_usage", "device_map", "attn_implementation", "revision")
"""Keys accepted (``torch_dtype`` is read as its new name ``dtype``)."""

DTYPES = ("auto", "float32", "bfloat16", "float16")


def check_load_options(options: dict[str, Any] | None) -> dict[str, Any]:
    """Validate and normalise base-model load options; returns the dict to hand ``from_pretrained``.

    Raises:
        ConfigError: an unknown key, or a dtype that is not one of :data:`DTYPES`.

    Example:
        >>> check_load_options({"torch_dtype": "bfloat16", "device_map": "auto"})
        {'dtype': 'bfloat16', 'device_map': 'auto'}
    """
    out: dict[str, Any] = {}
    for key, value in (options or {}).items():
        key = "dtype" if key == "torch_dtype" else key
        if key not in LOAD_OPTIONS:
            raise ConfigError(f"unknown base-model load option {key!r}; choose from {', '.join(LOAD_OPTIONS)}")
        if key == "dtype" and str(value).replace("torch.", "") not in DTYPES:
            raise ConfigError(f"dtype must be one of {', '.join(DTYPES)}, got {value!r}")
        out[key] = str(value).replace("torch.", "") if key == "dtype" else value
    return out


def merged_load_options(recorded: dict[str, Any] | None, given: dict[str, Any] | None) -> dict[str, Any]:
    """The options an adapter loads its base model with: those recorded at training, ``given`` keys winning.

    Args:
        recorded: the manifest's ``base_model.load_options`` (``None`` for adapters saved before they were recorded).
        given: the caller's options; a key set to ``None`` drops the recorded value (transformers' default applies).

    Raises:
        ConfigError: either side holds an unknown key or dtype.

    Example:
        >>> merged_load_options({"dtype": "bfloat16", "device_map": "auto"}, {"device_map": "cpu"})
        {'dtype': 'bfloat16', 'device_map': 'cpu'}
    """
    if recorded is not None and not isinstance(recorded, dict):
        raise ConfigError(f"the manifest's base-model load options must be a mapping, got {type(recorded).__name__}; "
                          "save the adapter again")  # fmt: skip
    merged = {**check_load_options(recorded), **{("dtype" if k == "torch_dtype" else k): v for k, v in (given or {}).items()}}
    return check_load_options({k: v for k, v in merged.items() if v is not None})
