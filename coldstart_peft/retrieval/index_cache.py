"""Where a catalog's item index is cached: in the adapter folder, or a user cache folder when that is read-only.

An adapter installed system-wide, mounted read-only or owned by someone else still serves
``recommend``: its index is then cached under ``$COLDSTART_PEFT_CACHE`` (default
``$XDG_CACHE_HOME/coldstart-peft``, else ``~/.cache/coldstart-peft``), keyed by the adapter's
fingerprint so two adapters never share an index.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from safetensors import SafetensorError, safe_open

from coldstart_peft.errors import UnwritableOutputError
from coldstart_peft.outputs import check_output_file, check_writable_dir
from coldstart_peft.retrieval.index_file import INDEX_FORMAT

logger = logging.getLogger(__name__)

INDEX_FOLDER = "index"
"""Sub-folder of a bi-encoder adapter folder where item indexes are cached, one file per catalog."""


@dataclass(frozen=True)
class IndexCache:
    """The file an index is read from and the one it is saved to (they differ after a fallback)."""

    read: Path
    write: Path


def cache_root() -> Path:
    """The user cache folder for indexes of adapters whose own folder is read-only."""
    if os.environ.get("COLDSTART_PEFT_CACHE"):
        return Path(os.environ["COLDSTART_PEFT_CACHE"])
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "coldstart-peft"


def is_index_file(path: str | Path) -> bool:
    """Whether ``path`` is an item index this library wrote (so replacing it loses nothing)."""
    try:
        with safe_open(str(path), framework="pt") as handle:
            return (handle.metadata() or {}).get("format") == INDEX_FORMAT
    except (SafetensorError, OSError, ValueError):
        return False


def explicit_index(path: str | Path) -> IndexCache:
    """An index file the caller named: refused up front if it is a folder or a file of someone else's.

    Raises:
        OverwriteRefusedError: ``path`` is a folder, a link, or a file that is not an item index.
        UnwritableOutputError: its folder cannot be written.
    """
    path = check_output_file(path, is_index_file, "index file")
    return IndexCache(path, path)


def adapter_index(adapters: str | Path, catalog: str, fingerprint: str) -> IndexCache:
    """The index cache of ``catalog`` for the adapter folder ``adapters``.

    Args:
        adapters: the adapter folder.
        catalog: the file-name-safe catalog name.
        fingerprint: the adapter's fingerprint (keys the fallback location).

    Returns:
        ``<adapters>/index/<catalog>.safetensors`` when that folder can be written; otherwise
        the same name under :func:`cache_root`, read from the adapter folder until a fallback
        copy exists.
    """
    own = Path(adapters) / INDEX_FOLDER / f"{catalog}.safetensors"
    try:
        return explicit_index(own)
    except UnwritableOutputError:
        fallback = cache_root() / INDEX_FOLDER / fingerprint / f"{catalog}.safetensors"
        logger.info("adapter folder %s is read-only; caching its item index at %s", adapters, fallback)
        check_writable_dir(fallback.parent, "the index cache folder (set COLDSTART_PEFT_CACHE)")
        read = fallback if fallback.is_file() or not own.is_file() else own
        return IndexCache(read, check_output_file(fallback, is_index_file, "index cache file"))
