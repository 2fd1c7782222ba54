"""Resumable training checkpoints: everything the engine needs to continue after ``kill -9``.

A checkpoint is one folder ``<checkpoint_dir>/step-<N>`` holding

* ``trainable.safetensors`` — the scorer's trainable weights (method weights and head);
* ``best.safetensors`` — the best-so-far validation weights, when there are any;
* ``method.safetensors`` — the method's own run state (AdaLoRA's importance scores);
* ``optimizer.pt``, ``scheduler.pt``, ``rng.pt`` — torch state dicts, read back with
  ``torch.load(weights_only=True)`` so a planted file cannot run code;
* ``progress.json`` — step, data position (epoch, batch), best-so-far summary, history.

It is written to a hidden temporary folder and renamed into place, and older checkpoints are
removed only after the new one is complete, so at every instant the newest ``step-*`` folder
is a whole checkpoint. Accelerate's ``save_state`` is not used: it pickles and unpickles the
training state, which is exactly what a folder copied from elsewhere must never do.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from coldstart_peft.errors import CheckpointError
from coldstart_peft.outputs import check_writable_dir

PREFIX = "step-"
PROGRESS = "progress.json"
FORMAT_VERSION = 1


def check_checkpoint_dir(checkpoint_dir: str | Path) -> Path:
    """Raise before training starts if checkpoints could not be written to ``checkpoint_dir``.

    The first checkpoint is written only after ``checkpoint_every`` steps of work; finding a
    read-only disk then would lose exactly the work checkpoints exist to keep.

    Raises:
        UnwritableOutputError: the folder is a file, or cannot be created or written.
    """
    return check_writable_dir(checkpoint_dir, "checkpoint folder (--checkpoint-dir)")


def capture_rng() -> dict[str, Any]:
    """The state of every random generator training draws from (torch, CUDA, numpy, random)."""
    kind, keys, position, has_gauss, gauss = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), position, has_gauss, gauss],
        "python": [version, list(internal), gauss_next],
    }


def restore_rng(state: dict[str, Any]) -> None:
    """Put back generator states taken by :func:`capture_rng`."""
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    kind, keys, position, has_gauss, gauss = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), position, has_gauss, gauss))
    version, internal, gauss_next = state["python"]
    random.setstate((version, tuple(internal), gauss_next))


def _tensors(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().contiguous().cpu() for k, v in state.items()}


def save_checkpoint(
    checkpoint_dir: str | Path,
    step: int,
    *,
    trainable: dict[str, torch.Tensor],
    best: dict[str, torch.Tensor] | None,
    method_state: dict[str, torch.Tensor],
    optimizer: dict[str, Any],
    scheduler: dict[str, Any],
    progress: dict[str, Any],
) -> Path:
    """Write the checkpoint of ``step`` atomically and drop the older ones.

    Args:
        checkpoint_dir: folder holding the run's checkpoints (created if needed).
        step: optimizer steps taken; names the folder.
        trainable: trainable weights of the scorer.
        best: best-so-far validation weights, or ``None``.
        method_state: the method's :meth:`~coldstart_peft.method.Method.state_dict`.
        optimizer: the optimizer's ``state_dict()``.
        scheduler: the scheduler's ``state_dict()``.
        progress: JSON-serializable counters and validation state.

    Returns:
        The checkpoint folder.
    """
    root = Path(checkpoint_dir)
    root.mkdir(parents=True, exist_ok=True)
    target = root / f"{PREFIX}{step:08d}"
    tmp = root / f".{target.name}.tmp-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        save_file(_tensors(trainable), str(tmp / "trainable.safetensors"))
        if best is not None:
            save_file(_tensors(best), str(tmp / "best.safetensors"))
        save_file(_tensors(method_state), str(tmp / "method.safetensors"))
        torch.save(optimizer, tmp / "optimizer.pt")
        torch.save(scheduler, tmp / "scheduler.pt")
        torch.save(capture_rng(), tmp / "rng.pt")
        # progress.json last: a folder without it was never finished.
        (tmp / PROGRESS).write_text(json.dumps({"format_version": FORMAT_VERSION, **progress}), encoding="utf-8")
        if (target / PROGRESS).is_file():  # a rerun that reached the same step again
            shutil.rmtree(target)
        elif target.exists():
            raise CheckpointError(f"{target} exists and is not a checkpoint; move it away or choose another checkpoint_dir")
        os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    for older in root.glob(f"{PREFIX}*"):
        # Only folders this module wrote (they hold progress.json): the user's own "step-*" stay.
        if older != target and older.name < target.name and (older / PROGRESS).is_file():
            shutil.rmtree(older, ignore_errors=True)
    return target


def latest_checkpoint(checkpoint_dir: str | Path) -> Path | None:
    """The newest complete checkpoint folder in ``checkpoint_dir``, or ``None``."""
    root = Path(checkpoint_dir)
    if not root.is_dir():
        return None
    done = [p for p in root.glob(f"{PREFIX}*") if p.is_dir() and (p / PROGRESS).is_file()]
    return max(done, key=lambda p: p.name) if done else None


def _load_torch(path: Path) -> Any:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint file {path} is missing; delete the folder {path.parent} to start over") from None
    except Exception as exc:  # weights_only refuses any pickled object that is not plain tensors and containers
        raise CheckpointError(
            f"{path} is not a plain tensor state file ({type(exc).__name__}: {exc}); it was not written by "
            f"coldstart-peft or is damaged. Delete {path.parent} to start over"
        ) from exc


def _load_tensors(path: Path) -> dict[str, torch.Tensor]:
    try:
        return load_file(str(path))
    except (SafetensorError, OSError) as exc:
        raise CheckpointError(f"{path} is unreadable ({exc}); delete {path.parent} to start over") from exc


def load_checkpoint(folder: str | Path) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint`.

    Returns:
        A dict with ``trainable``, ``best`` (or ``None``), ``method_state``, ``optimizer``,
        ``scheduler``, ``rng`` and ``progress``.

    Raises:
        CheckpointError: a file is missing, damaged, or holds more than tensors and containers.
    """
    folder = Path(folder)
    try:
        progress = json.loads((folder / PROGRESS).read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as exc:
        raise CheckpointError(f"{folder / PROGRESS} is unreadable ({exc}); delete {folder} to start over") from exc
    if not isinstance(progress, dict):
        raise CheckpointError(f"{folder / PROGRESS} is not a JSON object; delete {folder} to start over")
    if progress.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"{folder} has checkpoint format {progress.get('format_version')}, expected {FORMAT_VERSION}")
    best = folder / "best.safetensors"
    return {
        "trainable": _load_tensors(folder / "trainable.safetensors"),
        "best": _load_tensors(best) if best.is_file() else None,
        "method_state": _load_tensors(folder / "method.safetensors"),
        "optimizer": _load_torch(folder / "optimizer.pt"),
        "scheduler": _load_torch(folder / "scheduler.pt"),
        "rng": _load_torch(folder / "rng.pt"),
        "progress": progress,
    }
