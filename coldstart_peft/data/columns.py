"""Which of a table's columns holds which field: the mapping, its detection, and unused columns.

A user's own catalog rarely uses our column names, so :class:`ColumnMapping` says which of
theirs means what; ``--column title=product_name`` builds one on the command line. Optional
fields left unmapped are filled from columns that carry their usual name (a ``brand`` column
is the brand), and a column that still maps to nothing is named in a :class:`DataWarning`
with the flag that would use it, so no column is dropped without a word.
"""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from coldstart_peft.data.schema import LoadReport
from coldstart_peft.errors import ConfigError, DataWarning

USUAL_NAMES = {
    "label": ("rating", "label"),
    "brand": ("brand",),
    "categories": ("categories", "category"),
    "price": ("price",),
    "description": ("description",),
    "domain": ("domain",),
}
"""Optional field -> column names that mean it, used when the mapping leaves the field unset."""

ITEM_FIELDS = ("item_id", "title", "brand", "categories", "price", "description", "domain")
INTERACTION_FIELDS = ("user_id", "item_id", "order", "label")


@dataclass
class ColumnMapping:
    """Which source column holds each field; ``None`` means the source lacks it.

    Args:
        user_id: user column of the interactions table.
        item_id: item column in both tables.
        order: timestamp column (ISO-8601, epoch seconds or milliseconds) or position column; each
            user's events are sorted by it, ties in file order; file order when ``None``.
        label: rating / label column.
        title: item title column.
        brand: item brand column.
        categories: category path column; a list, a quoted list (``'Beauty', 'Makeup'``), or a string
            split on ``category_separator``.
        price: price column.
        description: description column.
        domain: explicit domain column; otherwise the domain comes from ``domain_level`` of the path.
        category_separator: separator inside a string category path.
        domain_level: which level of the path is the domain.
        extra: other item columns to keep in ``Item.attributes``.
        detect: fill the optional fields left at ``None`` from columns with their usual names
            (:data:`USUAL_NAMES`: ``brand``, ``category``/``categories``, ``price``, ``rating``...).

    Example:
        >>> ColumnMapping(title="product_name", categories="path", order=None)
    """

    user_id: str = "user_id"
    item_id: str = "item_id"
    order: str | None = "timestamp"
    label: str | None = None
    title: str = "title"
    brand: str | None = None
    categories: str | None = None
    price: str | None = None
    description: str | None = None
    domain: str | None = None
    category_separator: str = ">"
    domain_level: int = 1
    extra: list[str] = field(default_factory=list)
    detect: bool = True

    def detected(self, item_columns, interaction_columns) -> ColumnMapping:
        """A copy with the unset optional fields filled from the tables' columns (when ``detect``).

        Args:
            item_columns: the item table's column names.
            interaction_columns: the interaction table's column names.
        """
        if not self.detect:
            return self
        found = {}
        taken = set(self.used_columns())
        for name, usual in USUAL_NAMES.items():
            if getattr(self, name) is not None:
                continue
            columns = interaction_columns if name == "label" else item_columns
            match = next((c for c in usual if c in columns and c not in taken), None)
            if match is not None:
                found[name] = match
                taken.add(match)
        return dataclasses.replace(self, **found)

    def used_columns(self) -> list[str]:
        """Every column this mapping reads, in either table."""
        names = [getattr(self, f) for f in dict.fromkeys(ITEM_FIELDS + INTERACTION_FIELDS)]
        return [n for n in names if n] + list(self.extra)


MAPPING_FIELDS = [f.name for f in dataclasses.fields(ColumnMapping) if f.name != "detect"]


def mapping_from_options(options: list[str] | None, base: ColumnMapping | None = None) -> ColumnMapping | None:
    """Build a mapping from ``--column FIELD=COLUMN`` strings; ``None`` when there are none.

    ``order=`` (nothing after ``=``) keeps file order; ``extra=COLUMN`` may repeat; ``domain_level``
    takes a number.

    Raises:
        ConfigError: not ``FIELD=COLUMN``, an unknown field, or a required field left empty.
    """
    if not options:
        return None
    values: dict = {}
    for option in options:
        name, sep, column = option.partition("=")
        name, column = name.strip().replace("-", "_"), column.strip()
        if not sep or name not in MAPPING_FIELDS:
            raise ConfigError(
                f"--column {option!r} must be FIELD=COLUMN with FIELD one of {', '.join(MAPPING_FIELDS)}, "
                "e.g. --column title=product_name"
            )
        if name == "extra":
            values.setdefault("extra", []).append(column)
        elif name == "domain_level":
            try:
                values[name] = int(column)
            except ValueError:
                raise ConfigError(f"--column domain_level={column!r} must be a whole number (0 = the root)") from None
        elif not column and name in ("user_id", "item_id", "title", "category_separator"):
            raise ConfigError(f"--column {name}= needs a column name: {name} is required")
        else:
            values[name] = column or None
    return dataclasses.replace(base or ColumnMapping(), **values)


def warn_unused(columns, mapping: ColumnMapping, path, role: str, report: LoadReport) -> list[str]:
    """Warn about the columns of ``path`` that ``mapping`` does not read, naming the flag that would.

    Args:
        columns: the file's columns.
        mapping: the mapping in force (after :meth:`ColumnMapping.detected`).
        path: the file, for the message.
        role: ``"items"``, ``"interactions"`` or ``"users"`` (user files keep every column).
        report: records the unused columns under the file's name.

    Returns:
        The unused columns.
    """
    if role == "users":
        return []
    used = set(mapping.used_columns())
    unused = [c for c in columns if c not in used]
    if unused:
        name = Path(path).name
        report.unused[name] = unused
        fields = ITEM_FIELDS if role == "items" else INTERACTION_FIELDS
        open_fields = [f for f in fields if getattr(mapping, f) is None]
        keep = f"keep it in Item.attributes with --column extra={unused[0]}" if role == "items" else "leave it unread"
        if open_fields:
            advice = (f"map one with --column FIELD=COLUMN (e.g. --column {open_fields[0]}={unused[0]}; unmapped "
                      f"fields: {', '.join(open_fields)}), or {keep}")  # fmt: skip
        else:
            advice = keep
        warn_about_file(f"column(s) {', '.join(map(repr, unused))} not used; {advice} (ColumnMapping in Python)", path)
    return unused


def warn_about_file(message: str, path) -> None:
    """Raise a :class:`DataWarning` located at line 1 of the data file, not at a line of this library.

    The file's header is what the warning is about, so ``path:1`` is where a reader should look
    (Python prints that line under the message when the file is plain text).
    """
    warnings.warn_explicit(message, DataWarning, str(path), 1)
