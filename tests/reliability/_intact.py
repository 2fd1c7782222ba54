"""Byte-for-byte digests of a folder tree: what existed before a bad input must be there, unchanged, after."""

from __future__ import annotations

import hashlib
from pathlib import Path


def digests(root: Path) -> dict[str, str]:
    """Relative path -> sha256 of every file under ``root``."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*")) if p.is_file()}


def damaged(before: dict[str, str], root: Path) -> list[str]:
    """Files of ``before`` that are now missing or changed under ``root``."""
    after = digests(root)
    return [name for name, digest in before.items() if after.get(name) != digest]
