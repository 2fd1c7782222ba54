"""The on-disk form of an item index: one safetensors file, written atomically, checked when read.

The file holds the embeddings, one text hash per row and, for an index that searches with
FAISS, the FAISS index in FAISS's own binary format (``ann_index``). Its metadata names the
format, the item ids and the fingerprint of the adapter that produced the vectors. Keeping the
FAISS index in the same file means one atomic write replaces both, so a cached FAISS index
can never belong to other embeddings.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from coldstart_peft.artifact import read_safetensors
from coldstart_peft.errors import CorruptAdapterError, DataNotFoundError, StaleIndexError

INDEX_FORMAT = "coldstart-peft-item-index"
INDEX_FORMAT_VERSION = "1"


def write_index_file(
    path: str | Path, fingerprint: str, ids: Sequence[str], tensors: Mapping[str, torch.Tensor],
    metadata: Mapping[str, str] | None = None,
) -> Path:  # fmt: skip
    """Write an index file through a temporary sibling renamed into place (a crash leaves the old file).

    Args:
        path: the safetensors file.
        fingerprint: the adapter fingerprint of the embeddings.
        ids: item ids in row order.
        tensors: ``embeddings``, ``text_hashes`` and optionally ``ann_index``.
        metadata: further string metadata (``ann_factory``).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex[:8]}")
    header = {
        "format": INDEX_FORMAT,
        "format_version": INDEX_FORMAT_VERSION,
        "adapter_fingerprint": fingerprint,
        "item_ids": json.dumps(list(ids)),
        **(metadata or {}),
    }
    try:
        save_file({name: t.contiguous() for name, t in tensors.items()}, str(tmp), metadata=header)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def read_index_file(path: str | Path, fingerprint: str) -> tuple[dict[str, str], list[str], dict[str, torch.Tensor]]:
    """Read an index file written by :func:`write_index_file`, refusing one made with other weights.

    Returns:
        ``(metadata, item ids, tensors)``.

    Raises:
        DataNotFoundError: there is no file at ``path``.
        StaleIndexError: the index was built with weights of another fingerprint.
        CorruptAdapterError: the file is unreadable, truncated or not an item index.
    """
    path = Path(path)
    if not path.is_file():
        raise DataNotFoundError(f"no item index at {path}; build one with ItemIndex.add(...) and save it there")
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
    except (SafetensorError, OSError) as exc:
        raise CorruptAdapterError(f"{path} is not a readable item index ({exc}); delete it to rebuild") from exc
    if metadata.get("format") != INDEX_FORMAT:
        raise CorruptAdapterError(f"{path} is not a coldstart-peft item index; delete it or point elsewhere")
    if metadata.get("adapter_fingerprint") != fingerprint:
        raise StaleIndexError(
            f"item index {path} was built with weights of fingerprint {metadata.get('adapter_fingerprint')}, "
            f"but the model in use has fingerprint {fingerprint}; its embeddings are stale. "
            "Delete the file (Recommender.load rebuilds it) or rebuild it with this adapter"
        )
    tensors = read_safetensors(path)
    ids = json.loads(metadata["item_ids"])
    if len(ids) != len(tensors["embeddings"]) or len(ids) != len(tensors["text_hashes"]):
        raise CorruptAdapterError(f"{path} lists {len(ids)} item ids for {len(tensors['embeddings'])} rows; rebuild it")
    return metadata, ids, tensors
