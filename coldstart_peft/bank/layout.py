"""The on-disk layout of an adapter bank: one adapter folder per domain plus ``manifest.json``.

Layout of a bank root::

    manifest.json           base model, method, scorer, every domain with its counts and metrics
    _global/                the shared global adapter (optional; the fallback of cold domains)
    <domain-slug>/          one folder per trained domain, as ``save_adapter`` writes it, minus
                            its prior tables
    priors/<digest>.safetensors   prior tables, once per distinct set (see bank/prior_tables.py)

Domain names are free text ("Tools & Accessories"), folder names are slugs of them
("tools-accessories"); the manifest keeps both. Slugs only use ``[a-z0-9-]``, so the
underscore-prefixed ``_global`` folder and the hidden ``.tmp``/``.old`` siblings that atomic
saves leave after a crash can never collide with a domain.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import unicodedata
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from coldstart_peft import __version__
from coldstart_peft.artifact import read_json_manifest
from coldstart_peft.outputs import replace_dir
from coldstart_peft.errors import AdapterError

BANK_MANIFEST = "manifest.json"
BANK_FORMAT = "coldstart-peft-bank"
GLOBAL_FOLDER = "_global"
GLOBAL = "__global__"
"""Routing key of the global adapter (never a slug, so never a domain's key)."""
BASE = "__base__"
"""Routing key of the bare base model; also peft's own name for "no adapter" in mixed batches."""


def slugify(name: str) -> str:
    """A folder name for a domain: lowercase ASCII letters, digits and single hyphens.

    Example:
        >>> slugify("Tools & Accessories")
        'tools-accessories'
        >>> slugify("Soins & Beauté")
        'soins-beaute'
        >>> slugify("Красота")  # no ASCII letters: a short hash of the name
        'domain-30e17464'

    Raises:
        AdapterError: the name is empty.
    """
    text = unicodedata.normalize("NFC", str(name)).strip()
    if not text:
        raise AdapterError("a domain name must not be empty; name the domain")
    ascii_name = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")
    # Letters the ASCII folding drops (Красота, 美容) would leave names that collide or vanish:
    # such a name gets a short hash of itself, so its folder is stable, safe and its own.
    lost = any(c.isalnum() for c in unicodedata.normalize("NFKD", text) if not c.isascii())
    if lost or not slug:
        digest = hashlib.blake2b(text.encode("utf-8"), digest_size=4).hexdigest()
        slug = f"{slug}-{digest}" if slug else f"domain-{digest}"
    return slug


def folder_for(manifest: dict[str, Any], domain: str) -> str:
    """The folder of ``domain`` in a bank: its recorded folder, else a free slug of its name.

    Two domain names can slugify alike ("Bath & Body", "Bath Body"), so a taken slug gets a
    numeric suffix rather than overwriting the other domain's adapter.
    """
    entry = next((e for e in manifest["domains"] if e["name"] == domain and e.get("folder")), None)
    if entry:
        return entry["folder"]
    taken = {e.get("folder") for e in manifest["domains"]}
    slug, n = slugify(domain), 2
    base = slug
    while slug in taken:
        slug, n = f"{base}-{n}", n + 1
    return slug


def new_manifest(scorer, method, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The manifest of an empty bank for adapters of ``method`` on ``scorer``'s base model."""
    return {
        "format": BANK_FORMAT,
        "format_version": 1,
        "library_version": __version__,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "base_model": {"name_or_path": scorer.base_model_name, "fingerprint": scorer.base_fingerprint},
        "method": method.name,
        "method_config": method.config.to_dict(),
        "scorer": scorer.name,
        "scorer_config": scorer.config.to_dict(),
        "priors": {"features": list(scorer.priors.features)} if scorer.priors is not None else None,
        "supports_mixed_batches": bool(method.supports_mixed_batches),
        "supports_merge": bool(method.supports_merge),
        "global": None,
        "domains": [],
        "training": dict(extra or {}),
    }


def write_manifest(root: Path, manifest: dict[str, Any]) -> Path:
    """Write ``manifest.json`` atomically (temporary file, fsync, rename)."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    path = root / BANK_MANIFEST
    tmp = root / f".{BANK_MANIFEST}.tmp-{uuid.uuid4().hex[:8]}"
    try:
        with open(tmp, "w", encoding="utf-8") as handle:
            json.dump(manifest, handle, indent=2, default=str)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def read_manifest(root: Path) -> dict[str, Any]:
    """Read and check a bank's ``manifest.json``.

    Raises:
        AdapterError: the folder is not a bank.
        CorruptAdapterError: the manifest is not valid JSON.
    """
    return read_json_manifest(
        Path(root) / BANK_MANIFEST, BANK_FORMAT,
        missing=f"{root} has no {BANK_MANIFEST}; it is not an adapter bank. Create one with "
        "`coldstart-peft train --per-domain` or coldstart_peft.bank.BankWriter",
        remedy="restore it or retrain the bank",
    )


def copy_adapter(source: Path, target: Path) -> Path:
    """Copy an adapter folder to ``target`` atomically (copy to a hidden sibling, then rename)."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp-{uuid.uuid4().hex[:8]}")
    try:
        shutil.copytree(source, tmp)
        replace_dir(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target
