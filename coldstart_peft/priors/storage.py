"""Where an adapter's priors live on disk, and how older adapters are read.

An adapter folder with priors holds ``prior_tables.safetensors`` (the fitted tables) and
records ``"priors": {"features": [...], "tables": "<digest>"}`` in its manifest; the learned
weights are ``priors.weight`` in the scorer head, so every domain of a bank keeps its own
while the tables, identified by their digest, are stored once at the bank root.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from coldstart_peft.errors import CorruptAdapterError, OutdatedAdapterError
from coldstart_peft.priors.model import Priors, check_features
from coldstart_peft.priors.tables import PriorTables

TABLES_FILE = "prior_tables.safetensors"
SHARED_FOLDER = "priors"
"""A bank root's folder of prior tables, one file per distinct digest."""
LEGACY_FLAGS = ("popularity_prior", "lexical_prior", "cooccurrence_prior")
"""Scorer-config switches of the text-keyed priors of adapter format 1."""


def save_tables(priors: Priors | None, folder: Path) -> dict[str, Any] | None:
    """Write the tables of ``priors`` into ``folder``; the manifest entry, or ``None`` without priors."""
    if priors is None:
        return None
    if not priors.fitted:
        raise CorruptAdapterError("the priors were never fitted; train the scorer before saving it")
    priors.tables.save(folder / TABLES_FILE)
    return {"features": list(priors.features), "tables": priors.tables.digest()}


def shared_tables_path(root: Path, digest: str) -> Path:
    """Where a bank keeps the tables with ``digest``, once for every domain that uses them."""
    return Path(root) / SHARED_FOLDER / f"{digest}.safetensors"


def priors_from_manifest(
    entry: dict[str, Any] | None, folder: Path, read: Callable[[Path], dict], tables: PriorTables | None = None,
    shared_root: Path | None = None,
) -> Priors | None:
    """The :class:`Priors` a manifest entry describes, its tables read from ``folder`` unless given.

    Args:
        entry: the manifest's ``priors`` entry (``None``: the adapter has no priors).
        folder: the adapter folder.
        read: the checked safetensors reader to open the tables file with.
        tables: tables already loaded (a bank's shared ones), used instead of the folder's file.
        shared_root: a bank root whose shared tables serve a folder without its own file.

    Raises:
        CorruptAdapterError: the tables are missing, malformed, or not the ones the manifest names.
    """
    if entry is None:
        return None
    if not isinstance(entry, dict) or not isinstance(entry.get("features"), list) or not isinstance(entry.get("tables"), str):
        raise CorruptAdapterError(f"the priors entry of {folder}'s manifest is malformed ({entry!r}); save the adapter again")
    try:
        features = check_features(entry["features"])
    except Exception as exc:
        raise CorruptAdapterError(f"{folder}'s manifest names unknown prior features: {exc}") from exc
    if tables is None:
        path = folder / TABLES_FILE
        if not path.is_file() and shared_root is not None:
            path = shared_tables_path(shared_root, entry["tables"])
        if not path.is_file():
            raise CorruptAdapterError(
                f"{folder} has priors but no {TABLES_FILE}; an adapter copied out of a bank leaves its tables at the "
                "bank root: load it with AdapterBank.load(<bank root>), or save it again"
            )
        tables = PriorTables.from_state(read(path), str(path))
    if tables.digest() != entry["tables"]:
        raise CorruptAdapterError(
            f"the prior tables for {folder} (digest {tables.digest()}) are not the ones it was trained with "
            f"({entry['tables']}); save the adapter again"
        )
    return Priors(features, tables=tables)


def migrate_scorer_config(config: dict[str, Any], where: Path) -> dict[str, Any]:
    """A format-1 scorer config without its prior switches; refuse one whose priors were on.

    Format-1 priors were keyed by item text inside the scorer, and the text alone does not say
    which catalog item it was, so they cannot be rebuilt as id-keyed tables.
    """
    config = dict(config)
    on = [flag for flag in LEGACY_FLAGS if config.pop(flag, False)]
    if on:
        raise OutdatedAdapterError(
            f"{where} was saved by an older coldstart-peft with text-keyed priors ({', '.join(on)}), which this "
            "version replaced by id-keyed ones; retrain it (coldstart-peft train ... --out <new folder>) to get "
            "the new priors, or retrain with --no-priors"
        )
    return config
