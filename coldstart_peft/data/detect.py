"""What a dataset path holds, and the loader that reads it.

A folder is a MovieLens ``ml-100k`` folder, a UniSRec folder, a RecBole atomic dataset, or an
item table beside an interaction table under one of the usual names. A file is a RecBole atomic
file or a PixRec JSONL. Anything else (a labeled-pairs file, a lone table, a file whose first
line is a RecBole header under another name) is refused with a message saying what the file
looks like and which option reads it, instead of loading as an empty dataset.
"""

from __future__ import annotations

from pathlib import Path

from coldstart_peft.data.amazon2023 import load_pixrec
from coldstart_peft.data.columns import ColumnMapping
from coldstart_peft.data.movielens import load_movielens100k
from coldstart_peft.data.recbole import atomic_stem, load_recbole, recbole_stems
from coldstart_peft.data.schema import Dataset
from coldstart_peft.data.tables import LABELED_PAIR_COLUMNS, first_line, peek_columns, table_format
from coldstart_peft.data.tabular import load_tabular
from coldstart_peft.data.unisrec import load_unisrec
from coldstart_peft.errors import DataNotFoundError, WrongFileKindError

ITEM_TABLE_NAMES = ("items", "item", "products", "catalog", "meta", "metadata")
"""File stems taken as the item table of a dataset folder, in order of preference."""

INTERACTION_TABLE_NAMES = ("interactions", "interaction", "events", "ratings", "reviews", "clicks", "log")
"""File stems taken as the interaction table of a dataset folder, in order of preference."""

TABLE_EXTENSIONS = ("csv", "tsv", "jsonl", "json", "parquet")

PIXREC_KEYS = ("user_history", "user_history_images", "target_item", "target_item_image")

TABLE_FLAGS = "--items FILE --interactions FILE (with --column FIELD=COLUMN for your column names)"


def find_tables(folder: str | Path) -> tuple[Path, Path] | None:
    """The item and interaction tables of ``folder`` under the usual names; ``None`` when it has neither.

    Raises:
        DataNotFoundError: only one of the two, or two candidates for one role.
    """
    folder = Path(folder)
    found = {}
    for role, stems in (("items", ITEM_TABLE_NAMES), ("interactions", INTERACTION_TABLE_NAMES)):
        for stem in stems:
            hits = [folder / f"{stem}.{ext}{gz}" for ext in TABLE_EXTENSIONS for gz in ("", ".gz")]
            hits = [h for h in hits if h.is_file()]
            if len(hits) > 1:
                raise DataNotFoundError(
                    f"{folder} holds {len(hits)} {role} tables ({', '.join(h.name for h in hits)}); "
                    f"pick one with {TABLE_FLAGS}"
                )
            if hits:
                found[role] = hits[0]
                break
    if not found:
        return None
    if len(found) == 1:
        (have,) = found.values()
        other, names = ("interactions", INTERACTION_TABLE_NAMES) if "items" in found else ("items", ITEM_TABLE_NAMES)
        raise DataNotFoundError(
            f"{folder} has {have.name} but no {other} table (looked for {', '.join(names)} as "
            f".{', .'.join(TABLE_EXTENSIONS)}); name the two files with {TABLE_FLAGS}"
        )
    return found["items"], found["interactions"]


def load_path(path: str | Path, mapping: ColumnMapping | None = None) -> Dataset:
    """Load the dataset a folder or file holds (see the module docstring for what is recognized).

    Raises:
        WrongFileKindError: a file that is not a dataset (labeled pairs, a lone table, a misnamed RecBole file).
        DataNotFoundError: a folder without a recognized dataset.
    """
    path = Path(path)
    if path.is_file():
        return _load_file(path, mapping)
    if (path / "u.item").exists():
        return load_movielens100k(path, name=path.name)
    if any(path.glob("*.text")) or any(path.glob("*.text.gz")):
        return load_unisrec(path)
    if recbole_stems(path):
        return load_recbole(path, mapping)
    tables = find_tables(path)
    if tables is None:
        raise DataNotFoundError(
            f"{path} holds no dataset this library recognizes: RecBole NAME.inter + NAME.item, items.csv + "
            f"interactions.csv (or .tsv/.jsonl/.parquet; also products/catalog + events/ratings), ml-100k or "
            f"UniSRec files; for other names pass {TABLE_FLAGS}"
        )
    return load_tabular(*tables, mapping, name=path.name)


def _load_file(path: Path, mapping: ColumnMapping | None) -> Dataset:
    if atomic_stem(path):
        return load_recbole(path, mapping)
    columns = peek_columns(path)
    if set(LABELED_PAIR_COLUMNS) <= set(columns):
        raise WrongFileKindError(
            f"{path} is a labeled-pairs file (columns {', '.join(columns)}), not a dataset; train on it with "
            "`coldstart-peft train --pairs FILE` and evaluate with `coldstart-peft evaluate --adapter DIR --pairs FILE`"
        )
    kind = table_format(path)
    if set(PIXREC_KEYS) & set(columns) and kind in ("jsonl", None):
        return load_pixrec(path)
    line = first_line(path)
    if ":token" in line or ":float" in line:
        raise WrongFileKindError(
            f"{path} starts with a RecBole atomic header ({line!r}) but is not named .inter/.item/.user; "
            "rename it NAME.inter (beside NAME.item) and pass it, or its folder, as --dataset"
        )
    if kind is not None:
        raise WrongFileKindError(
            f"{path} is one table (columns {', '.join(columns) or 'unreadable'}); a dataset is an item table and "
            f"an interaction table: pass {TABLE_FLAGS}, or put both in a folder as items.* + interactions.*"
        )
    raise WrongFileKindError(
        f"{path} is not a file --dataset reads (it starts with {line!r}); --dataset takes a folder, a RecBole .inter "
        f"file or a PixRec .jsonl; for your own tables pass {TABLE_FLAGS}"
    )
