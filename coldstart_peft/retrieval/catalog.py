"""Where a recommender's items come from: a dataset name or path, a Dataset, or items directly."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path

from coldstart_peft.data.registry import load_dataset
from coldstart_peft.data.schema import Dataset, Item
from coldstart_peft.errors import ConfigError, DataError


def resolve_catalog(
    dataset: str | Path | Dataset | None = None, catalog: Mapping[str, Item] | Iterable[Item] | None = None
) -> tuple[str, dict[str, Item]]:
    """Return ``(catalog name, item id -> Item)`` from exactly one of ``dataset`` and ``catalog``.

    Args:
        dataset: a dataset name (``"beauty"``, ``"demo"``), a dataset path, or a loaded :class:`Dataset`.
        catalog: items as a mapping by id or an iterable of :class:`Item`.

    Raises:
        ConfigError: both or neither are given.
        DataError: the catalog is empty.
    """
    if (dataset is None) == (catalog is None):
        raise ConfigError("give exactly one item source: dataset='beauty' (a name, path or Dataset) or catalog=items")
    if catalog is not None:
        name = "catalog"
        items = dict(catalog) if isinstance(catalog, Mapping) else {item.item_id: item for item in catalog}
    else:
        loaded = dataset if isinstance(dataset, Dataset) else load_dataset(dataset)
        name, items = loaded.name, dict(loaded.items)
    if not items:
        raise DataError(f"the catalog {name!r} has no items; nothing can be recommended")
    return name, items


def catalog_name(name: str) -> str:
    """A file-name-safe version of a catalog name (a dataset path becomes its last part)."""
    base = Path(str(name)).name or "catalog"
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", base)
