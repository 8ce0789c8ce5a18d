"""Value checks for sweep axes and eval fields: types, bounds and registry names.

Each check takes a raw YAML value and returns it normalised, or raises `Invalid`
(the problem and its fix) or the registry's UnknownNameError; `validate` turns
either into one SpecError naming the file and the field. The axis table that
uses them is `suite.sweep.spec.AXES`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from suite.common.errors import SpecError
from suite.common.messages import clip, quote
from suite.common.registry import Registry, UnknownNameError


class Invalid(ValueError):
    """A value an axis refuses: the problem, and how to fix it."""

    def __init__(self, problem: str, fix: str = "") -> None:
        super().__init__(problem)
        self.fix = fix


def whole_number(low: int, high: int) -> Callable[[Any], int]:
    def check(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise Invalid(f"must be a whole number, got {quote(value)}",
                          f"write a whole number from {low} to {high:,}")
        if value < low:
            rule = {0: "must be a whole number >= 0", 1: "must be positive"}.get(
                low, f"must be at least {low}")
            raise Invalid(f"{rule}, got {value}", f"write a whole number from {low} to {high:,}")
        if value > high:
            raise Invalid(f"must be at most {high:,}, got {quote(value, 30)}",
                          f"write a whole number from {low} to {high:,}")
        return value

    return check


def to_float(value: Any, high: float, fix: str) -> float:
    """A YAML number as a float. YAML 1.1 reads `1e-4` (no dot) as a string, so a
    numeric string counts; booleans do not; an int too big for a float is over `high`."""
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise Invalid(f"must be a number, got {quote(value)}", fix) from None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise Invalid(f"must be a number, got {quote(value)}", fix)
    try:
        return float(value)
    except OverflowError:
        raise Invalid(f"must be at most {high:g}", fix) from None


def number(high: float) -> Callable[[Any], float]:
    fix = f"write a positive number up to {high:g}, e.g. 1.0e-4"

    def check(value: Any) -> float:
        value = to_float(value, high, fix)
        if not math.isfinite(value) or value <= 0:
            raise Invalid(f"must be a positive finite number, got {value}", fix)
        if value > high:
            raise Invalid(f"must be at most {high:g}, got {value:g}", fix)
        return value

    return check


def number_between(low: float, high: float, high_open: bool = False) -> Callable[[Any], float]:
    """A real number in [low, high] (or [low, high) when `high_open`), as a float."""
    top = ")" if high_open else "]"
    fix = f"write a number in [{low:g}, {high:g}{top}"

    def check(value: Any) -> float:
        value = to_float(value, high, fix)
        too_high = value >= high if high_open else value > high
        if not math.isfinite(value) or value < low or too_high:
            raise Invalid(f"must be in [{low:g}, {high:g}{top}, got {quote(value, 30)}", fix)
        return value

    return check


def flag(value: Any) -> bool:
    if not isinstance(value, bool):
        raise Invalid(f"must be true or false, got {quote(value)}", "write `true` or `false`")
    return value


def steps_per_call(value: Any) -> int | str:
    """`auto`, or a whole number of training steps per compiled call."""
    from suite.training.calls import AUTO, MAX_STEPS_PER_CALL  # imports no TensorFlow

    if value == AUTO:
        return AUTO
    try:
        return whole_number(1, MAX_STEPS_PER_CALL)(value)
    except Invalid as exc:
        problem = str(exc).replace("must be a whole number", "must be `auto` or a whole number")
        raise Invalid(problem, f"write `auto` or a whole number from 1 to "
                               f"{MAX_STEPS_PER_CALL:,}") from None


def optional(check: Callable[[Any], Any]) -> Callable[[Any], Any]:
    return lambda value: None if value is None else check(value)


def name_in(registry: Registry) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        if not isinstance(value, str):
            raise Invalid(f"must be a name, got {quote(value)}",
                          f"write one of: {', '.join(registry.names())}")
        registry.check(value)
        return value

    return check


def one_of(choices: tuple[str, ...]) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        if not isinstance(value, str) or value not in choices:
            raise Invalid(f"unknown value {quote(value)}; known: {', '.join(choices)}",
                          f"use one of: {', '.join(choices)}")
        return value

    return check


def dataset_name(value: Any) -> str:
    from suite.data.catalog import check_dataset_name  # data imports no TensorFlow

    if not isinstance(value, str):
        raise Invalid(f"must be a dataset name, got {quote(value)}",
                      "write e.g. `dataset: mnist` or `dataset: npz:/path/to/file.npz`")
    try:
        check_dataset_name(value)
    except OSError as exc:  # e.g. a path too long for the filesystem
        raise Invalid(f"cannot read {quote(value)}: {exc.strerror or exc}") from None
    except ValueError as exc:  # a user npz that is missing or malformed
        raise Invalid(clip(str(exc)), getattr(exc, "fix", None) or "give `npz:PATH` of a file "
                      "saved with np.savez(PATH, x=uint8_images, y=int_labels)") from None
    return value


def backbone_names(value: Any) -> tuple[str, ...]:
    from suite.metrics.backbones.registry import BACKBONES  # imports no TensorFlow

    names = [value] if isinstance(value, str) else value
    if not isinstance(names, list | tuple) or not all(isinstance(b, str) for b in names):
        raise Invalid(f"must be a list of backbone names, got {quote(value)}",
                      f"write e.g. `backbones: [domain]`; known: {', '.join(BACKBONES.names())}")
    for i, name in enumerate(names):
        BACKBONES.check(name)
        if name in names[:i]:
            raise Invalid(f"backbone {quote(name)} is listed twice", "list each backbone once")
    return tuple(names)


def eval_samples(value: Any) -> int:
    from suite.metrics.backbones.registry import MIN_EVAL_SAMPLES

    return whole_number(MIN_EVAL_SAMPLES, 1_000_000)(value)


def validate(check: Callable[[Any], Any], value: Any, source: str, field: str) -> Any:
    """`check(value)`, or one SpecError naming the source and the field."""
    try:
        return check(value)
    except UnknownNameError as exc:
        raise SpecError(source, field, clip(str(exc)),
                        f"use one of: {', '.join(exc.known)}") from None
    except Invalid as exc:
        raise SpecError(source, field, clip(str(exc)), exc.fix) from None
    except ValueError as exc:
        raise SpecError(source, field, clip(str(exc)), "see the sweep file format in README.md") \
            from None


