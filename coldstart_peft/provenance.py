"""What a result depends on: library versions, the machine, and fingerprints of the data.

Adapter manifests and result files record these, so two results can be checked for
comparability (same data, same split, same library versions) before anyone compares numbers.
"""

from __future__ import annotations

import hashlib
import platform
import subprocess
import sys
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from coldstart_peft.examples import TrainGroup

LIBRARIES = ("coldstart-peft", "torch", "transformers", "peft", "accelerate", "safetensors", "numpy")


def _version(distribution: str) -> str | None:
    try:
        return version(distribution)
    except PackageNotFoundError:
        return None


def environment_info() -> dict[str, Any]:
    """Library versions and the platform a result was produced on.

    Returns:
        ``{"python", "platform", "libraries": {name: version}, "cuda", "hardware"}`` (the
        hardware as :func:`~coldstart_peft.hardware.hardware_facts` reports it);
        a library that is not installed has version ``None``.

    Example:
        >>> environment_info()["libraries"]["torch"]  # doctest: +SKIP
        '2.13.0+cpu'
    """
    import torch  # late: keeps this module cheap for callers that only hash data

    from coldstart_peft.hardware import hardware_facts

    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "libraries": {name: _version(name) for name in LIBRARIES},
        "cuda": torch.version.cuda if torch.cuda.is_available() else None,
        "hardware": hardware_facts(),
    }


def git_revision(path: str | Path) -> dict[str, Any]:
    """The short commit of the checkout holding ``path`` and whether its tree differs from it.

    Benchmark result files record it next to :func:`environment_info`. Outside a git checkout
    (an installed package) both fields are ``None``.

    Returns:
        ``{"commit": "4458aaa", "dirty": False}``; ``dirty`` counts untracked files too.
    """
    root = Path(path).resolve()
    root = root if root.is_dir() else root.parent

    def git(*command: str) -> str | None:
        try:
            done = subprocess.run(["git", "-C", str(root), *command], capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    commit = git("rev-parse", "--short", "HEAD")
    status = git("status", "--porcelain") if commit else None
    return {"commit": commit, "dirty": None if status is None else bool(status)}


def groups_fingerprint(groups: Sequence[TrainGroup]) -> str:
    """A 16-hex-digit digest of training groups: their texts, labels and domains, in order.

    Two runs with the same fingerprint trained on the same examples in the same order.
    """
    digest = hashlib.sha256()
    for group in groups:
        digest.update(repr((group.user_text, list(group.item_texts), [float(x) for x in group.labels], group.domain)).encode("utf-8", "surrogatepass"))
        digest.update(b"\0")
    return digest.hexdigest()[:16]


def file_fingerprint(path: str | Path) -> str:
    """A 16-hex-digit digest of a file's bytes (a pairs file, a data table)."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]
