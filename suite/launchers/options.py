"""Launcher options: declared once, as typed fields of each backend's frozen dataclass.

`option(...)` attaches the help text (and, rarely, a flag name other than the
field's) to a field; the CLI builds its argparse groups from these fields, so a
name, type, default and help are written in exactly one place. Values arrive as
strings and are converted with the field's own type, so two launchers may share
a flag with different types (e.g. `--cpus-per-worker`: float for Ray, int for Slurm).
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from collections.abc import Iterable
from typing import Any

from suite.common.errors import SpecError


def option(default: Any, help: str, flag: str | None = None, metavar: str | None = None,
           cli: bool = True, choices: tuple[str, ...] = ()) -> Any:
    """A dataclass field with the metadata the CLI needs (`cli=False`: API only;
    `choices`: the only values allowed, checked by `check_choices`)."""
    metadata = {"help": help, "flag": flag, "metavar": metavar, "cli": cli,
                "choices": tuple(choices)}
    if isinstance(default, list | dict | set):
        raise TypeError("launcher options are frozen: use a tuple default")
    return dataclasses.field(default=default, metadata=metadata)


def check_choices(options: Any, where: str) -> None:
    """SpecError naming the field and the valid values if a field with `choices` holds
    another value (call it from the options' __post_init__)."""
    for field in dataclasses.fields(options):
        choices = field.metadata.get("choices") or ()
        value = getattr(options, field.name)
        if choices and value not in choices:
            raise SpecError(where, field.name, f"unknown value {str(value)[:40]!r}",
                            f"use one of: {', '.join(choices)}")


def flag_of(field: dataclasses.Field) -> str:
    return field.metadata.get("flag") or "--" + field.name.replace("_", "-")


def cli_fields(options_type: type) -> list[tuple[dataclasses.Field, Any]]:
    """(field, resolved type) of the options a user may give on the command line."""
    hints = typing.get_type_hints(options_type)
    return [(f, hints[f.name]) for f in dataclasses.fields(options_type)
            if f.metadata.get("cli", True)]


def _base_type(kind: Any) -> Any:
    """`int | None` -> int; `tuple[str, ...]` -> tuple; plain types unchanged."""
    if isinstance(kind, types.UnionType) or typing.get_origin(kind) is typing.Union:
        kinds = [k for k in typing.get_args(kind) if k is not type(None)]
        return kinds[0]
    return typing.get_origin(kind) or kind


def add_launcher_arguments(parser: argparse.ArgumentParser,
                           launchers: Iterable[tuple[str, type]]) -> None:
    """One argument group per launcher; a flag two launchers share is added once."""
    seen: dict[str, argparse._ArgumentGroup] = {}
    for name, options_type in launchers:
        group = parser.add_argument_group(f"{name} launcher (--launcher {name})")
        for field, kind in cli_fields(options_type):
            flag = flag_of(field)
            if flag in seen:
                continue
            base = _base_type(kind)
            default = "" if field.default in (None, (), False) else f" (default: {field.default})"
            choices = field.metadata.get("choices") or ()
            help_text = field.metadata.get("help", "") + (
                f"; one of {', '.join(choices)}" if choices else "") + default
            dest = field.name
            if base is bool:
                group.add_argument(flag, dest=dest, action="store_true", default=None,
                                   help=help_text)
            elif base is tuple:
                group.add_argument(flag, dest=dest, action="append", default=None,
                                   metavar=field.metadata.get("metavar"), help=help_text)
            else:
                group.add_argument(flag, dest=dest, default=None,
                                   metavar=field.metadata.get("metavar")
                                   or field.name.split("_")[0].upper(), help=help_text)
            seen[flag] = group


def launcher_kwargs(args: argparse.Namespace, options_type: type,
                    all_types: Iterable[type]) -> dict[str, Any]:
    """The options given on the command line, converted to `options_type`'s field types.

    A flag of another launcher that was given is passed on too, so the launcher
    rejects it with the list of its own valid options.
    """
    own_names = {f.name: kind for f, kind in cli_fields(options_type)}
    out: dict[str, Any] = {}
    for other in all_types:
        for field, _ in cli_fields(other):
            value = getattr(args, field.name, None)
            if value is None or field.name in out:
                continue
            kind = own_names.get(field.name)
            out[field.name] = value if kind is None else convert(value, kind, flag_of(field))
    return out


def convert(value: Any, kind: Any, flag: str) -> Any:
    base = _base_type(kind)
    if base is bool:
        return bool(value)
    if base is tuple:
        return tuple(value)
    if base in (int, float):
        try:
            return base(value)
        except ValueError:
            what = "a whole number" if base is int else "a number"
            raise SpecError("command line", flag, f"must be {what}, got {str(value)[:40]!r}") \
                from None
    return value
