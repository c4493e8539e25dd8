"""Typed settings tables: declare a table as a dataclass of :func:`setting` fields, read one with :func:`build`.

A field's type hint says what the TOML value may be (``bool`` is not an ``int``; an ``int`` is a
``float``), its metadata the allowed choices, the smallest value and whether the value names a
file or folder of the output (then it must be a :data:`SAFE_NAME`). Values are kept exactly as
given (no conversion), so the config hash of a study does not depend on this module.
"""

from __future__ import annotations

import copy
import dataclasses
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Literal, Mapping, Sequence

from oddoneout.errors import InputError

#: A name that is safe as one component of an output path: letters, digits, ``_``, ``-`` and ``.``,
#: not starting with ``.`` (so never ``..``, never a folder separator, never absolute).
SAFE_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]*")
SAFE_NAME_RULE = "letters, digits, '_', '-' and '.' (not first)"


def is_safe_name(value: str) -> bool:
    """Whether ``value`` is a :data:`SAFE_NAME` (one harmless component of an output path)."""
    return SAFE_NAME.fullmatch(value) is not None


def setting(
    default: Any,
    *,
    choices: Sequence[Any] | None = None,
    minimum: float | None = None,
    above: float | None = None,
    below: float | None = None,
    safe_name: bool = False,
    omit_default: bool = False,
) -> Any:
    """A field of a settings table.

    Parameters
    ----------
    default : object
        The value when the config does not set it (lists and tables are copied per instance).
    choices : sequence, optional
        The only values allowed.
    minimum : float, optional
        Smallest value allowed (for a number).
    above, below : float, optional
        Bounds the value must lie strictly between.
    safe_name : bool
        The value (or each string of a list) is used in an output path: it must be a
        :data:`SAFE_NAME` (an empty string means "not set" and is allowed).
    omit_default : bool
        Left out of the resolved table (:func:`resolved_table`: ``config.toml`` and the config
        hash) while at its default: for a key added after studies were run, so their config
        hashes stay what they were.
    """
    metadata = {
        "choices": choices,
        "minimum": minimum,
        "above": above,
        "below": below,
        "safe_name": safe_name,
        "omit_default": omit_default,
    }
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: copy.deepcopy(default), metadata=metadata)
    return field(default=default, metadata=metadata)


@dataclass(frozen=True)
class Where:
    """Where a table was read: the config file and the table's name (for error messages)."""

    file: Path
    table: str

    def error(self, key: str, problem: str) -> InputError:
        """A one-line error naming the file, the table and the key."""
        return InputError(f"{self.file}: [{self.table}] {key}: {problem}")

    def inner(self, name: str) -> Where:
        return Where(self.file, f"{self.table}.{name}")


class Settings:
    """Base of settings tables: cross-field checks go in :meth:`problems`."""

    def problems(self) -> Iterator[tuple[str, str]]:
        """``(key, problem)`` for each combination of values that cannot work (none by default)."""
        return iter(())


def build(cls: type, table: Mapping[str, Any], where: Where, *, others: str = "") -> Any:
    """Check ``table`` against the fields of dataclass ``cls`` and return the instance.

    Parameters
    ----------
    cls : dataclass type
        The table's settings class (subclass of :class:`Settings`).
    table : mapping
        The values the config gives (missing keys take their defaults).
    where : Where
        For error messages.
    others : str
        Said after an unknown key, e.g. which keys do apply.

    Raises
    ------
    InputError
        On an unknown key, a value of the wrong type, outside its choices or bounds, an unsafe
        name, or a problem :meth:`Settings.problems` reports.
    """
    if not isinstance(table, Mapping):
        raise InputError(f"{where.file}: [{where.table}] must be a table of settings, not {table!r}")
    hints = typing.get_type_hints(cls)
    declared = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(table) - set(declared))
    if unknown:
        known = others or f"known: {sorted(declared)}"
        raise InputError(f"{where.file}: unknown key(s) {unknown} in [{where.table}]; {known}")
    for key, value in table.items():
        _check_value(key, value, hints[key], declared[key].metadata, where)
    settings = cls(**table)
    for key, problem in settings.problems():
        raise where.error(key, problem)
    return settings


def as_table(settings: Any) -> dict[str, Any]:
    """The settings as a plain ``{key: value}`` table, in declaration order (deep copies)."""
    return {f.name: copy.deepcopy(getattr(settings, f.name)) for f in dataclasses.fields(settings)}


def resolved_table(settings: Any) -> dict[str, Any]:
    """:func:`as_table` without the keys declared ``omit_default`` that are at their default.

    What ``config.toml`` shows and the config hash covers.
    """
    table = as_table(settings)
    for f in dataclasses.fields(settings):
        if f.metadata.get("omit_default") and table[f.name] == (f.default_factory() if _has_factory(f) else f.default):
            del table[f.name]
    return table


def _has_factory(f: dataclasses.Field) -> bool:
    return f.default_factory is not dataclasses.MISSING  # type: ignore[misc]


def defaults(cls: type) -> dict[str, Any]:
    """``{key: default}`` of a settings class."""
    return as_table(cls())


def _check_value(key: str, value: Any, hint: Any, metadata: Mapping[str, Any], where: Where) -> None:
    if not _matches(value, hint):
        raise where.error(key, f"{value!r} is not {describe(hint)}")
    choices = metadata.get("choices")
    if choices is not None and value not in choices:
        raise where.error(key, f"{value!r} is not one of {tuple(choices)}")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if metadata.get("minimum") is not None and value < metadata["minimum"]:
            raise where.error(key, f"{value!r} is below the smallest allowed value, {metadata['minimum']!r}")
        low, high = metadata.get("above"), metadata.get("below")
        if (low is not None and not value > low) or (high is not None and not value < high):
            raise where.error(key, f"{value!r} must lie strictly between {low!r} and {high!r}")
    if metadata.get("safe_name"):
        for name in _strings(value):
            if name and not is_safe_name(name):
                raise where.error(key, f"{name!r} is used in output paths: use only {SAFE_NAME_RULE}")


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def _matches(value: Any, hint: Any) -> bool:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return True
    if hint is type(None):  # an optional value not set: TOML has no null, so a given value is never None
        return value is None
    if origin is Literal:
        return value in args
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, arg) for arg in args)
    if origin is list:
        return isinstance(value, list) and all(_matches(item, args[0]) for item in value)
    if origin is dict:
        return isinstance(value, dict) and all(isinstance(k, str) for k in value)
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    raise TypeError(f"unsupported settings type {hint!r}")


def describe(hint: Any) -> str:
    """What a type hint allows, in words (for error messages)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(describe(arg) for arg in args)
    if origin is list:
        inner = describe(args[0])
        if not inner.startswith(("a ", "an ")):
            return f"a list of ({inner})"
        noun = inner.split(" ", 1)[1]
        return "a list of " + ("lists" + noun[4:] if noun.startswith("list ") else noun + "s")
    if origin is dict:
        return "a table"
    names = {bool: "true or false", int: "an integer", float: "a number", str: "a string", type(None): "unset"}
    return names.get(hint, str(hint))
