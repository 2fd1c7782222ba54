"""Check config values against their dataclass annotations before any config method compares them.

Values reach configs from JSON (``--method-config r="16"``, a hand-edited manifest), so a
string where an ``int`` belongs would otherwise surface as a raw ``TypeError`` inside a
plugin's ``validate`` or, worse, deep in training. Only the shapes JSON can produce are
checked (numbers, strings, booleans, ``None``, lists, objects); any richer annotation is
left to the config's own ``validate``.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any

from coldstart_peft.errors import ConfigError


def _matches(value: Any, annotation: Any) -> bool | None:
    """Whether ``value`` fits ``annotation``; ``None`` when the annotation is not one this module judges."""
    if annotation is Any:
        return True
    if annotation is type(None):
        return value is None
    if annotation is bool:
        return isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if annotation is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if annotation is str:
        return isinstance(value, str)
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        verdicts = [_matches(value, arg) for arg in args]
        return True if any(verdicts) else (None if None in verdicts else False)
    if origin is typing.Literal:
        return value in args
    if origin in (list, tuple, set, frozenset) or annotation in (list, tuple):
        if not isinstance(value, (list, tuple)):
            return False
        if origin is tuple:  # only the homogeneous tuple[X, ...] is judged element by element
            inner = args[0] if len(args) == 2 and args[1] is Ellipsis else None
        else:
            inner = args[0] if args else None
        return inner is None or False not in [_matches(v, inner) for v in value]
    if origin is dict or annotation is dict:
        return isinstance(value, dict)
    return None


def describe(annotation: Any) -> str:
    """A short human name of an annotation (``int``, ``float | None``, ``list[str]``)."""
    return getattr(annotation, "__name__", None) if isinstance(annotation, type) else str(annotation).replace("typing.", "")


def check_field_types(config_class: type, values: dict[str, Any]) -> None:
    """Raise unless each value fits the annotation of its field in the dataclass ``config_class``.

    Raises:
        ConfigError: naming the field, the type it takes and the value given.
    """
    try:
        hints = typing.get_type_hints(config_class)
    except Exception:  # an annotation that cannot be resolved is the config's own business
        return
    for field in dataclasses.fields(config_class):
        if field.name in values and field.name in hints and _matches(values[field.name], hints[field.name]) is False:
            raise ConfigError(
                f"{config_class.__name__}.{field.name} takes {describe(hints[field.name])}, "
                f"got {values[field.name]!r} ({type(values[field.name]).__name__})"
            )
