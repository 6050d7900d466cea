"""Generic checking of values against declared types and ranges.

Types come from annotations (dataclass fields or builder signatures); ranges
and parsers ride along in `typing.Annotated` metadata, so every value of every
config section is checked the same way, not case by case.
"""
from __future__ import annotations

import dataclasses
import difflib
import math
import types
import typing
from types import MappingProxyType
from typing import Any, Literal, Mapping, Union

from ..core.errors import ConfigError
from ..core.registry import Registry
from .schema import Choice, Parse, Range

# The registries a Choice may name, by their kind (Registry.kind); the caller hands them over.
Registries = Mapping[str, Registry]
NONE: Registries = MappingProxyType({})  # read-only: the default of every call


def type_name(tp: Any) -> str:
    """Human-readable name of an annotation, for error messages."""
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        return type_name(typing.get_args(tp)[0])
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if origin in (Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        inner = " or ".join(type_name(a) for a in args)
        return f"{inner} or null" if len(args) < len(typing.get_args(tp)) else inner
    if origin is list:
        (arg,) = typing.get_args(tp)
        return f"a list of {type_name(arg)}"
    if origin is dict:
        k, v = typing.get_args(tp)
        return f"a mapping of {type_name(k)} to {type_name(v)}"
    if dataclasses.is_dataclass(tp):
        return "a mapping"
    return {int: "an integer", float: "a number", bool: "true or false", str: "a string"}.get(
        tp, getattr(tp, "__name__", str(tp))
    )


def coerce(value: Any, tp: Any, where: str, registries: Registries = NONE) -> Any:
    """Return `value` converted to annotation `tp`, or raise ConfigError naming `where`; a Choice
    is looked up in `registries` by its kind."""
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        base, *meta = typing.get_args(tp)
        for m in meta:
            if isinstance(m, Parse) and isinstance(value, str):
                try:
                    value = m.fn(value)
                except ValueError:
                    raise ConfigError(f"{where}: {value!r} is not valid; expected {m.hint}") from None
        value = coerce(value, base, where, registries)
        for m in meta:
            if isinstance(m, Choice) and value not in registries[m.kind]:
                raise ConfigError(f"{where}: {value!r} is not allowed; choose one of: {', '.join(registries[m.kind].names())}")
            if isinstance(m, Range) and value is not None:
                items = value if isinstance(value, list) else [value]
                for v in items:
                    if not m.ok(v):
                        raise ConfigError(f"{where}: {v!r} is out of range; allowed: {m.describe()}")
        return value
    if origin in (Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        candidates = [a for a in args if a is not type(None)]
        if len(candidates) == 1:  # Optional[X]: X's own, more specific message
            return coerce(value, candidates[0], where, registries)
        for arg in candidates:
            try:
                return coerce(value, arg, where, registries)
            except ConfigError:
                continue
        raise ConfigError(f"{where}: {value!r} is not valid; expected {type_name(tp)}")
    if origin is Literal:
        choices = typing.get_args(tp)
        if value in choices and not isinstance(value, bool):
            return value
        raise ConfigError(
            f"{where}: {value!r} is not allowed; choose one of: {', '.join(map(str, choices))}"
        )
    if origin is list:
        (arg,) = typing.get_args(tp)
        if isinstance(value, tuple):
            value = list(value)
        if not isinstance(value, list):
            raise ConfigError(f"{where}: {value!r} is not valid; expected {type_name(tp)}")
        return [coerce(v, arg, f"{where}[{i}]", registries) for i, v in enumerate(value)]
    if origin is dict:
        kt, vt = typing.get_args(tp)
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: {value!r} is not valid; expected {type_name(tp)}")
        return {coerce(k, kt, f"{where} key", registries): coerce(v, vt, f"{where}.{k}", registries) for k, v in value.items()}
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, str):
            try:
                value = int(value.replace("_", "").replace(",", ""))
            except ValueError:
                pass
        if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
            value = int(value)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is float:
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                pass
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = float(value)
            if math.isfinite(value):
                return value
    elif tp is str:
        if isinstance(value, str) and value.strip():
            return value
    elif tp is Any:
        return value
    elif dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if isinstance(value, dict):
            return build_dataclass(tp, value, where, registries)
    raise ConfigError(f"{where}: {value!r} is not valid; expected {type_name(tp)}")


def unknown_key(key: str, allowed: list[str], where: str) -> ConfigError:
    """A ConfigError for an unknown key, with the closest allowed key suggested."""
    near = difflib.get_close_matches(key, allowed, n=1)
    hint = f" (did you mean {near[0]!r}?)" if near else ""
    return ConfigError(f"unknown key {where}{key}{hint}; allowed keys: {', '.join(allowed)}")


def build_dataclass(cls: type, raw: dict, where: str, registries: Registries = NONE) -> Any:
    """Build dataclass `cls` from a mapping, checking every key and value."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a mapping of keys, got {raw!r}")
    hints = typing.get_type_hints(cls, include_extras=True)
    names = [f.name for f in dataclasses.fields(cls)]
    kwargs = {}
    prefix = f"{where}." if where else ""
    for key, val in raw.items():
        if key not in names:
            raise unknown_key(str(key), names, prefix)
        kwargs[key] = coerce(val, hints[key], f"{prefix}{key}", registries)
    return cls(**kwargs)
