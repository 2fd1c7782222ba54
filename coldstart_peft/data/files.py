"""Opening data files: gzip is transparent and a missing file names what to do.

Shared datasets ship some files gzipped and some not; callers name the plain file and
get whichever exists, so a re-compressed copy of a dataset needs no code change.
"""

from __future__ import annotations

import gzip
import io
from pathlib import Path

from coldstart_peft.errors import DataNotFoundError


def resolve_file(path: str | Path) -> Path:
    """Return ``path`` or ``path.gz`` (or, for a ``.gz`` name, the plain file), whichever exists.

    Raises:
        DataNotFoundError: neither exists.
    """
    path = Path(path)
    candidates = [path]
    if path.suffix == ".gz":
        candidates.append(path.with_suffix(""))
    else:
        candidates.append(path.with_name(path.name + ".gz"))
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise DataNotFoundError(
        f"data file {path} (or its .gz twin) does not exist; check the dataset folder or set "
        f"$COLDSTART_PEFT_DATA to the folder holding the shared datasets"
    )


def open_text(path: str | Path, encoding: str = "utf-8", errors: str = "strict") -> io.TextIOBase:
    """Open a text file for reading, decompressing ``.gz`` transparently.

    Args:
        path: the file; ``x`` and ``x.gz`` are both tried (see :func:`resolve_file`).
        encoding: text encoding (MovieLens ``u.item`` is latin-1).
        errors: codec error policy.

    Returns:
        A text stream with universal newlines off, so quoted newlines inside fields survive
        for the csv module.
    """
    resolved = resolve_file(path)
    if resolved.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(resolved, "rb"), encoding=encoding, errors=errors, newline="")
    return open(resolved, encoding=encoding, errors=errors, newline="")
