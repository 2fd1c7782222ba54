"""Name → class registries that fail loudly: lowercase names, no duplicates, helpful misses."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Generic, TypeVar

from coldstart_peft.errors import DuplicateNameError, InvalidNameError, UnknownNameError

T = TypeVar("T")
_NAME = re.compile(r"^[a-z][a-z0-9_\-]*$")


@dataclass(frozen=True)
class Entry(Generic[T]):
    """A registered class and the plugin that registered it."""

    name: str
    obj: T
    plugin: str


class Registry(Generic[T]):
    """A registry of named classes of one kind (``"method"`` or ``"scorer"``).

    Args:
        kind: the word used in error messages.
    """

    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, Entry[T]] = {}

    def add(self, obj: T, plugin: str) -> None:
        """Register ``obj`` under its ``name`` attribute.

        Raises:
            InvalidNameError: the name is not lowercase letters, digits, ``-`` or ``_``.
            DuplicateNameError: another plugin already registered this name.
        """
        name = getattr(obj, "name", None)
        if not isinstance(name, str) or not _NAME.match(name):
            raise InvalidNameError(
                f"plugin {plugin!r} registered a {self.kind} named {name!r}; "
                "names must be lowercase letters, digits, '-' or '_', starting with a letter"
            )
        if name in self._entries:
            first = self._entries[name].plugin
            raise DuplicateNameError(
                f"{self.kind} {name!r} is registered twice, by {first!r} and by {plugin!r}; "
                "uninstall one of them or rename its " + self.kind
            )
        self._entries[name] = Entry(name, obj, plugin)

    def get(self, name: str) -> T:
        """Return the class registered as ``name``.

        Raises:
            UnknownNameError: listing the registered names.
        """
        try:
            return self._entries[name].obj
        except KeyError:
            raise UnknownNameError(self.kind, name, self._entries) from None

    def entry(self, name: str) -> Entry[T]:
        """Return the registry entry (class and plugin) for ``name``."""
        self.get(name)
        return self._entries[name]

    def names(self) -> list[str]:
        """Registered names, sorted."""
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[Entry[T]]:
        return iter(sorted(self._entries.values(), key=lambda e: e.name))

    def __len__(self) -> int:
        return len(self._entries)
