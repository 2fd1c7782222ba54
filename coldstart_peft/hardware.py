"""What the machine computes natively and fast, and the precision ``auto`` therefore means.

Lower precision is a speed choice that depends on the hardware. On an AVX2-only CPU every
bf16 matmul is emulated and a training step was measured 4-26x *slower* than fp32. Having the
bf16 instructions is not enough either: bf16 autocast was measured about 1.5x faster on an AMD
EPYC with AVX512-BF16, yet 1.35x slower in training and 1.6x slower in scoring on an Intel Xeon
with AVX512-BF16 but no AMX (MiniLM, torch 2.13). So on a CPU with bf16 instructions ``auto``
times a transformer-layer-sized block both ways once per process (about half a second) and
picks bf16 only where it is clearly faster. The decision is made here, in one place, and
travels with its reason into logs, adapter manifests and benchmark result files.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging
import platform
import time
from pathlib import Path
from typing import Any

import torch

from coldstart_peft.errors import ConfigError

logger = logging.getLogger("coldstart_peft")

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
"""Accepted precision names; ``no`` (Accelerate's word for full precision) means ``fp32``."""


@dataclasses.dataclass(frozen=True)
class PrecisionChoice:
    """A resolved precision and why it was chosen.

    Attributes:
        name: ``fp32``, ``bf16`` or ``fp16``.
        reason: one sentence a user can check against their machine.
    """

    name: str
    reason: str

    @property
    def accelerate(self) -> str:
        """The name Accelerate's ``mixed_precision`` takes."""
        return "no" if self.name == "fp32" else self.name

    @property
    def autocast_dtype(self) -> torch.dtype | None:
        """The autocast dtype, ``None`` for full precision."""
        return {"bf16": torch.bfloat16, "fp16": torch.float16}.get(self.name)


def cpu_model() -> str:
    """The CPU's model name as the OS reports it (``unknown`` where it does not)."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            if line.lower().startswith(("model name", "hardware")):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine() or "unknown"


def _probe(name: str) -> bool:
    """A torch capability probe by name; ``False`` where this torch build lacks it."""
    owner, _, attribute = name.rpartition(".")
    target: Any = torch
    for part in owner.split(".")[1:]:
        target = getattr(target, part, None)
    function = getattr(target, attribute, None)
    try:
        return bool(function()) if callable(function) else False
    except (RuntimeError, AttributeError):
        return False


@functools.lru_cache(maxsize=1)
def native_cpu_bf16() -> bool:
    """Whether this CPU has bf16 instructions (AVX512-BF16 or AMX on x86, BF16 on Arm) in use.

    Three conditions, each of which alone has been seen true on machines where bf16 was slow:
    oneDNN must run bf16 kernels (it honours ``ONEDNN_MAX_CPU_ISA``), the CPU must have the
    bf16 instructions, and ATen must dispatch its elementwise kernels at AVX512 (it honours
    ``ATEN_CPU_CAPABILITY``).
    """
    if not _probe("torch.ops.mkldnn._is_mkldnn_bf16_supported"):
        return False
    if platform.machine().lower() in ("x86_64", "amd64", "i686", "x86"):
        instructions = _probe("torch.cpu._is_avx512_bf16_supported") or _probe("torch.cpu._is_amx_tile_supported")
        return instructions and torch.backends.cpu.get_cpu_capability().startswith("AVX512")
    return True


MIN_SPEEDUP = 1.15
"""bf16 must beat fp32 by this factor on the timed block; below it, fp32's accuracy wins."""


def _block_runs(rounds: int = 3) -> tuple[list[float], list[float]]:
    """Times of forward + backward through one MiniLM-sized feed-forward block, fp32 and bf16 interleaved.

    Interleaving puts both precisions under the same load: a job that starts on the other core
    mid-probe slows both, not only whichever ran second.
    """
    generator = torch.Generator().manual_seed(0)
    up, down = torch.randn(384, 1536, generator=generator) * 0.05, torch.randn(1536, 384, generator=generator) * 0.05
    up.requires_grad_(True)
    down.requires_grad_(True)
    x = torch.randn(1024, 384, generator=generator)

    def run(bf16: bool) -> float:
        start = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            y = torch.nn.functional.layer_norm(torch.nn.functional.gelu(x @ up) @ down + x, (384,))
        y.float().sum().backward()
        return time.perf_counter() - start

    fp32, bf16 = [], []
    # The first decision may come from inside a scorer's no_grad/inference_mode block.
    with torch.inference_mode(False), torch.enable_grad():
        run(False), run(True)  # the first runs pay for kernel selection
        for _ in range(rounds):
            fp32.append(run(False))
            bf16.append(run(True))
    return fp32, bf16


@functools.lru_cache(maxsize=1)
def cpu_bf16_speedup() -> float | None:
    """fp32 time / bf16 time of a timed block on this CPU; ``None`` without bf16 instructions.

    Each side's fastest run counts: load from other processes only ever adds time, so the
    minimum is the closest to what the block costs on a quiet core.
    """
    if not native_cpu_bf16():
        return None
    fp32, bf16 = _block_runs()
    return min(fp32) / min(bf16)


def hardware_facts() -> dict[str, Any]:
    """The facts a speed figure depends on; recorded with every result and manifest.

    Returns:
        ``{"cpu_model", "cpu_capability", "native_cpu_bf16", "cpu_bf16_speedup", "cuda_device"}``;
        the speedup is measured only once ``auto`` precision was resolved on this CPU.
    """
    return {
        "cpu_model": cpu_model(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "native_cpu_bf16": native_cpu_bf16(),
        "cpu_bf16_speedup": cpu_bf16_speedup() if cpu_bf16_speedup.cache_info().currsize else None,
        "cuda_device": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
    }


def _normalize(requested: str) -> str:
    name = "fp32" if requested == "no" else requested
    if name not in PRECISIONS:
        raise ConfigError(f"unknown precision {requested!r}; choose one of {', '.join(PRECISIONS)}")
    return name


def resolve_precision(requested: str = "auto", device: torch.device | str | None = None) -> PrecisionChoice:
    """Turn a requested precision into the one to run, with the reason.

    Args:
        requested: ``auto``, ``fp32`` (or ``no``), ``bf16`` or ``fp16``.
        device: where the model runs; ``None`` means CUDA if present, else the CPU.

    Returns:
        A :class:`PrecisionChoice`.

    Raises:
        ConfigError: an unknown name, or ``fp16`` on a CPU.

    Example:
        >>> resolve_precision("auto", "cpu").name in ("fp32", "bf16")
        True
    """
    name = _normalize(requested)
    kind = torch.device(device).type if device is not None else ("cuda" if torch.cuda.is_available() else "cpu")
    if name == "fp16" and kind == "cpu":
        raise ConfigError("fp16 runs on GPUs only; on a CPU use --precision bf16 (where native) or fp32")
    if name != "auto":
        return PrecisionChoice(name, "asked for explicitly")
    if kind == "cuda":
        if torch.cuda.is_bf16_supported():
            return PrecisionChoice("bf16", f"{torch.cuda.get_device_name()} supports bf16")
        return PrecisionChoice("fp16", f"{torch.cuda.get_device_name()} lacks bf16; fp16 with a loss scaler")
    if kind != "cpu":
        return PrecisionChoice("fp32", f"no native-precision probe for {kind} devices")
    capability = torch.backends.cpu.get_cpu_capability()
    if not native_cpu_bf16():
        return PrecisionChoice(
            "fp32", f"the CPU has no native bf16 (capability {capability}); bf16 would be emulated and several times slower"
        )
    speedup = cpu_bf16_speedup()
    if speedup >= MIN_SPEEDUP:
        return PrecisionChoice("bf16", f"the CPU computes bf16 natively (capability {capability}), {speedup:.2f}x fp32's speed")
    return PrecisionChoice(
        "fp32", f"the CPU has bf16 instructions (capability {capability}) but bf16 ran at {speedup:.2f}x fp32's speed here"
    )


_announced: set[tuple[str, str]] = set()


def announce(choice: PrecisionChoice, what: str) -> None:
    """Log a precision decision once per process and purpose (``training``, ``scoring``)."""
    if (what, choice.name) not in _announced:
        _announced.add((what, choice.name))
        logger.info("%s precision: %s (%s)", what, choice.name, choice.reason)


def autocast(precision: str, device: torch.device):
    """The autocast context for ``precision`` on ``device``: nothing for full precision."""
    choice = resolve_precision(precision, device)
    announce(choice, "scoring")
    if choice.autocast_dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=choice.autocast_dtype)
