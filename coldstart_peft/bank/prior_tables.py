"""A bank's prior tables: stored once at the root, shared by every domain that was trained on them.

Each domain keeps its own prior *weights* (in its head); the tables are fitted data, usually
the same for every domain (the global run's), so a domain folder holds none and the root's
``priors/<digest>.safetensors`` serves them all.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

from coldstart_peft.artifact import read_manifest as read_adapter_manifest, read_safetensors
from coldstart_peft.errors import CorruptAdapterError
from coldstart_peft.priors import PriorTables
from coldstart_peft.priors.storage import TABLES_FILE, shared_tables_path


def share_tables(root: Path, folder: Path) -> None:
    """Move ``folder``'s prior tables to the bank root (once per digest), leaving only weights in it.

    A crash before the move leaves a domain folder that still loads on its own tables.
    """
    entry = read_adapter_manifest(folder).get("priors")
    own = folder / TABLES_FILE
    if not entry or not own.is_file():
        return
    tables = PriorTables.from_state(read_safetensors(own), str(own))
    if tables.digest() != entry["tables"]:
        raise CorruptAdapterError(f"{own} is not the table set {folder}'s manifest names; save the adapter again")
    target = shared_tables_path(root, entry["tables"])
    if not target.is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.tmp-{uuid.uuid4().hex[:8]}")
        tables.save(tmp)
        os.replace(tmp, target)
    own.unlink()
