"""One small generic registry, used once per axis (datasets, models, upsamplers,
feature backbones, launchers), so that an unknown name always lists the known ones."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

T = TypeVar("T")


class UnknownNameError(KeyError):
    """A name that is not in a registry; the message lists the valid names."""

    def __init__(self, kind: str, name: str, known: list[str]) -> None:
        self.kind, self.name, self.known = kind, name, known
        super().__init__(f"unknown {kind} {name!r}; known: {', '.join(known)}")

    def __str__(self) -> str:  # KeyError would quote the whole message
        return self.args[0]


class Registry(Generic[T]):
    """Maps names to plain factories for one axis.

    An entry may be given as a ``"module:attribute"`` path, resolved on first
    `get`: listing and validating names then imports no TensorFlow, which keeps
    `genbench plan` and sweep validation fast. Tags carry the few facts a
    validator needs without building anything (e.g. ``conditional=True``).
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, T | str] = {}
        self._tags: dict[str, dict[str, object]] = {}

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator: `@REG.register("name")` adds the decorated factory."""

        def add(entry: T) -> T:
            self.add(name, entry)
            return entry

        return add

    def add(self, name: str, entry: T | str, **tags: object) -> None:
        if name in self._entries:
            raise ValueError(f"{self.kind} {name!r} is registered twice")
        self._entries[name] = entry
        self._tags[name] = dict(tags)

    def get(self, name: str) -> T:
        self.check(name)
        entry = self._entries[name]
        if isinstance(entry, str):
            module_name, _, attribute = entry.partition(":")
            entry = getattr(importlib.import_module(module_name), attribute)
            self._entries[name] = entry
        return entry

    def check(self, name: str) -> None:
        """Raise UnknownNameError (listing the known names) unless `name` is known."""
        if name not in self._entries:
            raise UnknownNameError(self.kind, name, self.names())

    def tags(self, name: str) -> dict[str, object]:
        self.check(name)
        return dict(self._tags[name])

    def names(self) -> list[str]:
        return list(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)
