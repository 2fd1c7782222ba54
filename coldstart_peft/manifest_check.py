"""The fields an adapter manifest must have, with the JSON type of each, checked as soon as it is read.

A manifest is a file a user may copy, edit or receive from someone else; a field of the wrong
type would otherwise surface as a raw ``KeyError`` or ``TypeError`` halfway through loading.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from coldstart_peft.errors import CorruptAdapterError

REQUIRED = {"method": str, "method_config": dict, "scorer": str, "scorer_config": dict, "base_model": dict}
BASE_MODEL = {"name_or_path": str, "fingerprint": str}
OPTIONAL = {"metrics": dict, "extra": dict, "format_version": int}


def _type_name(value: Any) -> str:
    return {dict: "object", list: "array", str: "string", int: "number", float: "number", bool: "boolean"}.get(
        type(value), "null" if value is None else type(value).__name__
    )


def _check(record: dict[str, Any], fields: dict[str, type], where: str, path: Path, required: bool) -> None:
    for name, kind in fields.items():
        if name not in record:
            if required:
                raise CorruptAdapterError(f"{path} lacks the field {where}{name!r}; save the adapter again")
            continue
        value = record[name]
        if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
            raise CorruptAdapterError(
                f"{path}: field {where}{name!r} must be a JSON {_type_name(kind())}, got {_type_name(value)}; "
                "the manifest was edited or damaged, save the adapter again"
            )


def check_manifest_fields(manifest: dict[str, Any], path: Path) -> dict[str, Any]:
    """Return ``manifest`` if every field loading reads is present with its JSON type.

    Raises:
        CorruptAdapterError: naming the first field that is missing or of the wrong type.
    """
    _check(manifest, REQUIRED, "", path, required=True)
    _check(manifest["base_model"], BASE_MODEL, "base_model.", path, required=True)
    _check(manifest, OPTIONAL, "", path, required=False)
    return manifest
