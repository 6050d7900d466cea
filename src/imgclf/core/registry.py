"""One small registry class: models, data sets, optimizers, schedules, augmentations, plugins.

Every list of names a user can choose from is read from a registry, never copied; what
other code needs to know of an entry (a schedule is time-driven, an optimizer takes
Nesterov momentum) rides along as attributes given at registration.
"""
from __future__ import annotations

import fnmatch
from typing import Any, Callable, Generic, Iterator, TypeVar

from .errors import ConfigError

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps names to builder functions (and their attributes); `register` is a decorator."""

    def __init__(self, kind: str):
        self.kind = kind
        self._items: dict[str, T] = {}
        self._attrs: dict[str, dict[str, Any]] = {}

    def register(self, name: str, **attrs: Any) -> Callable[[T], T]:
        def deco(obj: T) -> T:
            if name in self._items:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._items[name] = obj
            self._attrs[name] = attrs
            return obj

        return deco

    def get(self, name: str) -> T:
        """Return the item registered as `name`, or raise a ConfigError listing the choices."""
        try:
            return self._items[name]
        except KeyError:
            raise ConfigError(
                f"unknown {self.kind} {name!r}; choose one of: {', '.join(self.names())}"
            ) from None

    def attr(self, name: str, key: str, default: Any = None) -> Any:
        """An attribute given when `name` was registered (`default` when it was not given)."""
        self.get(name)
        return self._attrs[name].get(key, default)

    def names(self, pattern: str = "*", **attrs: Any) -> list[str]:
        """Registered names matching a shell-style wildcard and the given attribute values, in registration order."""
        return [n for n in self._items if fnmatch.fnmatch(n, pattern)
                and all(self._attrs[n].get(k) == v for k, v in attrs.items())]

    def __contains__(self, name: str) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)
