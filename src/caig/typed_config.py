"""Build typed config dataclasses from plain YAML data, with errors that name the key and the file.

Every stage has one config dataclass; a profile (``configs/<name>.yaml``) holds one section per stage.
This module turns a mapping into such a dataclass, checking unknown keys and types recursively, so that a
typo in a profile or an override fails loudly instead of being ignored.
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from typing import Any, Union

from caig.errors import UserError


def build_config(cls: type, data: Any, where: str, source: str) -> Any:
    """Return ``cls(**data)`` after checking every key and value against the dataclass's type hints.

    Args:
        cls: a dataclass type.
        data: the mapping read from YAML (None means all defaults).
        where: dotted key of this section (``world``), used in messages.
        source: the file the data came from, used in messages.
    """
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise UserError(f"{source}: '{where}' must be a mapping of keys, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    moved = getattr(cls, "MOVED_KEYS", {})  # keys that moved to another section: name the new place
    stale = sorted(set(data) & set(moved))
    if stale:
        raise UserError(moved_key_message(_join(where, stale[0]), moved[stale[0]], source))
    unknown = sorted(set(data) - set(fields))
    if unknown:
        known = ", ".join(sorted(fields))
        raise UserError(
            f"{source}: unknown key '{_join(where, unknown[0])}'; known keys of '{where}': {known}"
        )
    values = {name: _coerce(hints[name], value, _join(where, name), source) for name, value in data.items()}
    try:
        return cls(**values)
    except (ValueError, TypeError) as err:
        raise UserError(f"{source}: {where}: {err}" if where else f"{source}: {err}") from None


def moved_key_message(old: str, new: str, source: str) -> str:
    """The one line that tells a profile (or ``--set``) setting a key that moved where it lives now; a config
    dataclass lists its moved keys as ``MOVED_KEYS`` (old field name -> new dotted key)."""
    return f"{source}: '{old}' has moved to '{new}'; write it there, with the same value"


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _coerce(tp: Any, value: Any, key: str, source: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        for arg in (a for a in args if a is not type(None)):
            try:
                return _coerce(arg, value, key, source)
            except UserError:
                continue
        raise _type_error(tp, value, key, source)
    if dataclasses.is_dataclass(tp):
        return build_config(tp, value, key, source)
    if origin in (list, tuple):
        if not isinstance(value, list | tuple):
            raise _type_error(tp, value, key, source)
        item = args[0] if args else Any
        items = [_coerce(item, v, f"{key}[{i}]", source) for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, dict):
            raise _type_error(tp, value, key, source)
        vt = args[1] if len(args) > 1 else Any
        return {str(k): _coerce(vt, v, f"{key}.{k}", source) for k, v in value.items()}
    if origin is typing.Literal:
        if value not in args:
            choices = ", ".join(repr(a) for a in args)
            raise UserError(f"{source}: '{key}' must be one of {choices}, got {value!r}")
        return value
    return _coerce_scalar(tp, value, key, source)


_FLOAT_LITERAL = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def _coerce_scalar(tp: Any, value: Any, key: str, source: str) -> Any:
    if tp is Any:
        return value
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise _type_error(tp, value, key, source)
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise _type_error(tp, value, key, source)
    if tp is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str) and _FLOAT_LITERAL.fullmatch(value.strip()):
            return float(value)  # YAML 1.1 reads 1e-4 (no dot) as a string
        raise _type_error(tp, value, key, source)
    if tp is str:
        if isinstance(value, str):
            return value
        raise _type_error(tp, value, key, source)
    if isinstance(tp, type) and isinstance(value, tp):
        return value
    raise _type_error(tp, value, key, source)


def _type_error(tp: Any, value: Any, key: str, source: str) -> UserError:
    name = getattr(tp, "__name__", None) or str(tp).replace("typing.", "")
    return UserError(f"{source}: '{key}' must be {name}, got {type(value).__name__} {value!r}")


def as_dict(config: Any) -> dict[str, Any]:
    """A plain, YAML/JSON-serialisable dict of a config dataclass (tuples become lists)."""
    return _plain(dataclasses.asdict(config))


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value
