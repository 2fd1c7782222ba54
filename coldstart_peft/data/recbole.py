"""RecBole atomic files: ``NAME.inter`` + ``NAME.item``, and optionally ``NAME.user``, in one folder.

RecBole's atomic files are tab-separated with a typed header (``user_id:token``,
``timestamp:float``, ``title:token_seq``); fields keep their RecBole names, so the default
:class:`ColumnMapping` reads them: ``user_id``, ``item_id``, ``timestamp`` (the order),
``rating`` (the label), ``title``, ``brand``, ``categories``, ``price``. Other names are
mapped with ``--column`` (``--column title=movie_title`` for RecBole's ml-1m). As in RecBole,
an interaction with an item the ``.item`` file lacks is kept; the item gets no text, and the
report and a warning count them. Titles and brands are HTML-unescaped, since RecBole's Amazon
item files keep the crawl's entities (``&amp;``).
"""

from __future__ import annotations

from pathlib import Path

from coldstart_peft.data.columns import ColumnMapping
from coldstart_peft.data.schema import Dataset, LoadReport
from coldstart_peft.data.tabular import build_dataset
from coldstart_peft.data.tables import read_rows
from coldstart_peft.errors import DataNotFoundError, WrongFileKindError

ATOMIC_SUFFIXES = (".inter", ".item", ".user")


def atomic_stem(path: str | Path) -> tuple[str, str] | None:
    """``(stem, suffix)`` of a RecBole atomic file name (``shop.inter.gz`` -> ``("shop", ".inter")``); else ``None``."""
    name = Path(path).name
    name = name[:-3] if name.endswith(".gz") else name
    for suffix in ATOMIC_SUFFIXES:
        if name.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)], suffix
    return None


def _sibling(folder: Path, stem: str, suffix: str) -> Path | None:
    for candidate in (folder / f"{stem}{suffix}", folder / f"{stem}{suffix}.gz"):
        if candidate.is_file():
            return candidate
    return None


def recbole_stems(folder: str | Path) -> list[str]:
    """Stems of the ``.inter`` files in ``folder`` (gzip optional), sorted."""
    stems = set()
    for entry in Path(folder).iterdir():
        parsed = atomic_stem(entry)
        if parsed and parsed[1] == ".inter" and entry.is_file():
            stems.add(parsed[0])
    return sorted(stems)


def recbole_files(path: str | Path) -> tuple[Path, Path, Path | None]:
    """Find the ``.inter``, ``.item`` and (if present) ``.user`` files of a RecBole dataset.

    Args:
        path: the dataset folder, or one of its atomic files (the others are its siblings).

    Raises:
        DataNotFoundError: no ``.inter`` file, no ``.item`` beside it, or several datasets in one folder.
    """
    path = Path(path)
    if path.is_dir():
        folder = path
        stems = recbole_stems(folder)
        if not stems:
            raise DataNotFoundError(f"{folder} holds no RecBole .inter file; a RecBole dataset is NAME.inter + NAME.item")
        if len(stems) > 1 and folder.name not in stems:  # RecBole names the folder after its dataset
            raise DataNotFoundError(
                f"{folder} holds several RecBole datasets ({', '.join(stems)}); pass one .inter file as --dataset"
            )
        stem = folder.name if folder.name in stems else stems[0]
    else:
        parsed = atomic_stem(path)
        if parsed is None:
            raise DataNotFoundError(f"{path} is not a RecBole atomic file (.inter, .item or .user)")
        folder, stem = path.parent, parsed[0]
    inter, item = _sibling(folder, stem, ".inter"), _sibling(folder, stem, ".item")
    if inter is None or item is None:
        have, lacks = (f"{stem}.inter", f"{stem}.item") if inter else (f"{stem}.item", f"{stem}.inter")
        raise DataNotFoundError(
            f"{folder} has {have} but no {lacks}; a RecBole dataset needs both (the .item file gives the items' "
            "titles), or pass your tables with --items FILE --interactions FILE"
        )
    return inter, item, _sibling(folder, stem, ".user")


def load_recbole(path: str | Path, mapping: ColumnMapping | None = None, name: str | None = None) -> Dataset:
    """Load a RecBole atomic dataset: a folder holding ``NAME.inter`` + ``NAME.item`` (+ ``NAME.user``), or one of them.

    Args:
        path: the folder, or the ``.inter`` (or ``.item``/``.user``) file; siblings are found by name.
        mapping: column names when they differ from RecBole's usual ones.
        name: dataset name; defaults to ``NAME``.

    Returns:
        A validated :class:`Dataset`; ``.user`` columns become user attributes.

    Raises:
        DataNotFoundError: a file of the pair is missing.
        WrongFileKindError: the ``.inter`` file is one of UniSRec's split files.
        MissingColumnsError: a mapped column is absent (the message suggests ``--column``).

    Example:
        >>> ds = load_recbole("shop/")                     # shop/shop.inter + shop/shop.item
        >>> ds = load_recbole("ml-1m/ml-1m.inter", ColumnMapping(title="movie_title"))
    """
    inter_path, item_path, user_path = recbole_files(path)
    report = LoadReport()
    interactions = read_rows(inter_path, report)
    if "item_id_list" in interactions.columns:
        raise WrongFileKindError(
            f"{inter_path} is a UniSRec split file (user_id, item_id_list, item_id), not a RecBole interaction log; "
            "pass the folder holding its .text and .item2index files as --dataset"
        )
    items = read_rows(item_path, report)
    users = read_rows(user_path, report) if user_path else None
    stem = atomic_stem(inter_path)[0]
    return build_dataset(items, interactions, mapping, name or stem, report, users=users, keep_unknown_items=True)
