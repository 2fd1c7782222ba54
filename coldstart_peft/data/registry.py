"""Named datasets in the shared data folder, and loading a dataset by name or path.

The shared folder is found as ``$COLDSTART_PEFT_DATA`` or ``../shared/data`` next to the
repository, so the same command works on every machine that mounts the data the usual way.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from coldstart_peft.data.amazon2014 import load_amazon2014
from coldstart_peft.data.columns import ColumnMapping
from coldstart_peft.data.detect import load_path
from coldstart_peft.data.movielens import load_movielens100k
from coldstart_peft.data.schema import Dataset
from coldstart_peft.data.unisrec import SCIENTIFIC_DOMAINS, load_unisrec
from coldstart_peft.errors import DataNotFoundError, UnknownNameError

DATA_ENV = "COLDSTART_PEFT_DATA"


def data_dir() -> Path:
    """Return the shared data folder.

    Raises:
        DataNotFoundError: neither ``$COLDSTART_PEFT_DATA`` nor ``../shared/data`` exists.
    """
    if os.environ.get(DATA_ENV):
        path = Path(os.environ[DATA_ENV]).expanduser()
        if not path.is_dir():
            raise DataNotFoundError(f"${DATA_ENV} is {path}, which is not a folder; point it at the shared datasets")
        return path
    repo_root = Path(__file__).resolve().parents[2]
    tried = [repo_root.parent / "shared" / "data", Path.cwd().parent / "shared" / "data"]
    for path in tried:
        if path.is_dir():
            return path
    raise DataNotFoundError(
        f"shared data folder not found (tried {', '.join(map(str, tried))}); "
        f"set {DATA_ENV}=/path/to/shared/data or pass a dataset path instead of a name"
    )


def _beauty(root: Path) -> Dataset:
    base = root / "amazon2014-beauty-5core"
    return load_amazon2014(
        base / "p5" / "sequential_data.txt.gz", base / "p5" / "datamaps.json.gz",
        base / "recbole" / "Amazon_Beauty.item.gz", name="beauty",
    )  # fmt: skip


def _scientific(root: Path) -> Dataset:
    folder = root / "amazon2018-scientific-unisrec" / "Scientific"
    return load_unisrec(folder, root="Industrial & Scientific", domains=SCIENTIFIC_DOMAINS)


def _movielens(root: Path) -> Dataset:
    return load_movielens100k(root / "movielens-100k" / "ml-100k")


DATASETS: dict[str, Callable[[Path], Dataset]] = {
    "beauty": _beauty,
    "scientific": _scientific,
    "movielens": _movielens,
}
"""Dataset name -> loader taking the shared data folder."""


def _demo() -> Dataset:
    from coldstart_peft.demo import demo_dataset  # the generator is only needed when asked for

    return demo_dataset()


GENERATED_DATASETS: dict[str, Callable[[], Dataset]] = {"demo": _demo}
"""Dataset name -> generator; these need no shared data folder (``demo``: the ``demo`` command's shop)."""

_CACHE: dict[str, Dataset] = {}


def load_dataset(name_or_path: str | Path, mapping: ColumnMapping | None = None, cache: bool = True) -> Dataset:
    """Load a named shared dataset or a dataset folder/file.

    Args:
        name_or_path: ``"beauty"``, ``"scientific"``, ``"movielens"``, ``"demo"`` (generated); or a path: a
            RecBole folder (``NAME.inter`` + ``NAME.item`` [+ ``NAME.user``]) or its ``.inter`` file, a folder
            holding an item table and an interaction table (``items.csv`` + ``interactions.csv``, any of
            ``.csv``/``.tsv``/``.jsonl``/``.parquet``, or the other names in
            :data:`~coldstart_peft.data.detect.ITEM_TABLE_NAMES` / ``INTERACTION_TABLE_NAMES``), an ``ml-100k``
            folder, a UniSRec folder, or a PixRec ``.jsonl`` file.
        mapping: column mapping for RecBole files and tables (see :class:`ColumnMapping`).
        cache: reuse a dataset already loaded in this process (loaders take seconds).

    Returns:
        The validated :class:`Dataset`.

    Raises:
        UnknownNameError: not a known name and not an existing path.
        WrongFileKindError: a file that is not a dataset (a labeled-pairs file, a lone table); the message
            names the option that reads it.
        EmptyDatasetError: the files hold no item or no interaction.

    Example:
        >>> beauty = load_dataset("beauty")
        >>> len(beauty.items)
        12101
    """
    key = str(name_or_path)
    if cache and key in _CACHE and mapping is None:
        return _CACHE[key]
    if key.lower() in GENERATED_DATASETS:
        dataset = GENERATED_DATASETS[key.lower()]()
    elif key.lower() in DATASETS:
        dataset = DATASETS[key.lower()](data_dir())
    else:
        dataset = _load_path(Path(key), mapping, name_or_path)
    if cache and mapping is None:
        _CACHE[key] = dataset
    return dataset


def _load_path(path: Path, mapping: ColumnMapping | None, original) -> Dataset:
    if not path.exists():
        raise UnknownNameError("dataset", str(original), [*DATASETS, *GENERATED_DATASETS, "<path to a dataset folder or file>"])
    return load_path(path, mapping).check_not_empty("check the files hold rows below their header")
