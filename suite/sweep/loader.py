"""Sweep files -> validated, frozen trials: read, check every field, expand the grid.

Every problem is reported as one SpecError naming the file and the field, with a fix,
before anything runs; the grid's size is known (and bounded) before it is expanded.
The dataclasses and axis rules are suite/sweep/spec.py; reading the YAML safely is
suite/sweep/yaml_reader.py.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Mapping
from typing import Any

from suite.common.errors import SpecError
from suite.common.messages import quote
from suite.sweep import values as sv
from suite.sweep.spec import (
    AXES,
    EVAL_FIELDS,
    MAX_DESCRIPTION_CHARS,
    MAX_MILESTONES,
    MAX_NAME_CHARS,
    MAX_TRIALS,
    NAME_PATTERN,
    POLICY_KEYS,
    TOP_LEVEL_KEYS,
    EvalSpec,
    SweepSpec,
    Trial,
    _validate_axis,
    check_batch_fill,
)
from suite.sweep.yaml_reader import join_field, load_yaml, read_sweep_text


def load_sweep(path_or_name: str) -> SweepSpec:
    """Parse and validate a sweep file (or built-in name) into frozen trials."""
    source, text = read_sweep_text(path_or_name)
    return parse_sweep(load_yaml(text, source), source)


def parse_sweep(raw: Any, source: str) -> SweepSpec:
    """Validate a parsed sweep document: all rules, in order, before any expansion."""
    if not isinstance(raw, Mapping):
        raise SpecError(source, "(top level)", "a sweep file must be a mapping",
                        "start with `name: ...`, `dataset: ...`, `grid: ...`")
    unknown = [k for k in raw if k not in TOP_LEVEL_KEYS]
    if unknown:
        raise SpecError(source, join_field("", unknown[0]), "unknown key",
                        f"use only: {', '.join(TOP_LEVEL_KEYS)} (axes go under grid or fixed)")
    name = raw.get("name")
    if not (isinstance(name, str) and len(name) <= MAX_NAME_CHARS and NAME_PATTERN.match(name)):
        raise SpecError(source, "name", f"must be a plain name (letters, digits, _.-; at most "
                        f"{MAX_NAME_CHARS} characters), got {quote(name)}",
                        "add e.g. `name: my-sweep`; results go to <out>/<name>/")
    description = raw.get("description", "")
    description = "" if description is None else description
    if not isinstance(description, str) or len(description) > MAX_DESCRIPTION_CHARS:
        got = (f"{len(description):,} characters" if isinstance(description, str)
               else quote(description))
        raise SpecError(source, "description", f"must be text of at most "
                        f"{MAX_DESCRIPTION_CHARS:,} characters, got {got}",
                        "write one line of text, e.g. `description: dcgan vs vae`")
    fixed = _fixed_axes(raw, source)
    grids = _grids(raw.get("grid"), source)
    shapes = [_grid_shape(grid, label, fixed, source) for label, grid in grids]
    _check_grid_size(shapes, source)
    cache: dict[tuple, Any] = {}
    checked = [{axis: [_cached_axis(axis, v, source, f"{label}.{axis}", cache) for v in values]
                for axis, values in grid.items()} for label, grid in grids]
    eval_spec = _eval_spec(raw.get("eval"), source)
    trials = _expand(name, fixed, checked, eval_spec)
    _check_trials(trials, source)
    return SweepSpec(name=name, source=source, trials=tuple(trials), description=description)


def _mapping(value: Any, source: str, field: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise SpecError(source, field,
                        f"must be a mapping (axis: value), got {type(value).__name__}",
                        f"write `{field}:` followed by indented `axis: value` lines")
    return dict(value)


def _fixed_axes(raw: Mapping, source: str) -> dict[str, Any]:
    fixed = _mapping(raw.get("fixed"), source, "fixed")
    for axis, value in fixed.items():
        _check_axis_name(axis, source, join_field("fixed", axis))
        if isinstance(value, list):
            raise SpecError(source, f"fixed.{axis}", "fixed takes one value, not a list",
                            "move the axis to grid to sweep over it")
    checked = {axis: _validate_axis(axis, v, source, f"fixed.{axis}") for axis, v in fixed.items()}
    if "dataset" in raw:
        if "dataset" in fixed:
            raise SpecError(source, "fixed.dataset", "dataset is given twice",
                            "keep either the top-level `dataset` or `fixed.dataset`")
        checked["dataset"] = _validate_axis("dataset", raw["dataset"], source, "dataset")
    for key in POLICY_KEYS:
        if key in raw:
            if key in fixed:
                raise SpecError(source, f"fixed.{key}", f"{key} is given twice",
                                f"keep either the top-level `{key}` or `fixed.{key}`")
            checked[key] = _validate_axis(key, raw[key], source, key)
    return checked


def with_checkpoints(sweep: SweepSpec, policy: str | None) -> SweepSpec:
    """The sweep with every trial's checkpoint policy set to `policy` (the `--checkpoints`
    flag; None leaves the sweep file's). Trial ids do not change."""
    if policy is None:
        return sweep
    policy = _validate_axis("checkpoints", policy, "command line", "--checkpoints")
    return dataclasses.replace(sweep, trials=tuple(dataclasses.replace(t, checkpoints=policy)
                                                   for t in sweep.trials))


def _grids(value: Any, source: str) -> list[tuple[str, dict[str, Any]]]:
    if isinstance(value, list):
        if not value:
            raise SpecError(source, "grid", "an empty list of grids has no trials",
                            "give at least one mapping of axis -> list")
        if len(value) == 1:
            return [("grid", _mapping(value[0], source, "grid[0]"))]
        return [(f"grid[{i}]", _mapping(g, source, f"grid[{i}]")) for i, g in enumerate(value)]
    return [("grid", _mapping(value, source, "grid"))]


def _check_axis_name(axis: Any, source: str, field: str) -> None:
    if not isinstance(axis, str) or axis not in AXES:
        raise SpecError(source, field, "unknown axis", f"known axes: {', '.join(AXES)}")


def _grid_shape(grid: dict[str, Any], label: str, fixed: dict[str, Any],
                source: str) -> tuple[str, int, int]:
    """(label, trials, milestones) of one grid, from the lengths of its lists."""
    for axis, values in grid.items():
        field = join_field(label, axis)
        _check_axis_name(axis, source, field)
        if axis in POLICY_KEYS:
            raise SpecError(source, field, f"{axis} is a policy of the whole sweep, not an axis",
                            f"give one value under fixed or at the top level, e.g. "
                            f"`{axis}: {AXES[axis][1]}`")
        if axis in fixed:
            raise SpecError(source, field, "axis is in both grid and fixed (or top level)",
                            "keep it in one place")
        if not isinstance(values, list) or not values:
            raise SpecError(source, field, "a grid axis takes a non-empty list of values",
                            f"write `{axis}: [a, b]`, or move a single value to fixed")
    for axis, (_, default) in AXES.items():
        if default is ... and axis not in grid and axis not in fixed:
            raise SpecError(source, axis, "required axis is missing",
                            f"add `{axis}: ...` under fixed (or a list under grid)")
    milestones = len(grid.get("epochs", [None]))
    if milestones > MAX_MILESTONES:
        raise SpecError(source, f"{label}.epochs", f"{milestones:,} epoch milestones (limit "
                        f"{MAX_MILESTONES})", "list fewer epochs; each one is an evaluation")
    return label, math.prod(len(v) for a, v in grid.items() if a != "epochs"), milestones


def _check_grid_size(shapes: list[tuple[str, int, int]], source: str) -> None:
    counts = [trials for _, trials, _ in shapes]
    if sum(counts) > MAX_TRIALS:
        parts = "" if len(counts) == 1 else " = " + " + ".join(f"{n:,}" for n in counts[:4]) + (
            " + ..." if len(counts) > 4 else "")
        raise SpecError(source, "grid", f"expands to {sum(counts):,} trials{parts} (limit "
                        f"{MAX_TRIALS:,}; products of the grid's list lengths, epochs aside)",
                        "split the sweep into several files, or shorten the grid's lists")


def _cached_axis(axis: str, value: Any, source: str, field: str, cache: dict) -> Any:
    """Validate a value once per sweep (a dataset check may read an npz header)."""
    if isinstance(value, list | dict):  # unhashable: fails its check anyway
        return _validate_axis(axis, value, source, field)
    key = (axis, type(value), value)
    if key not in cache:
        cache[key] = _validate_axis(axis, value, source, field)
    return cache[key]


def _eval_spec(value: Any, source: str) -> EvalSpec:
    d = _mapping(value, source, "eval")
    for key in d:
        if key not in EVAL_FIELDS:
            raise SpecError(source, join_field("eval", key), "unknown key",
                            f"eval takes: {', '.join(EVAL_FIELDS)}")
    checked = {key: sv.validate(EVAL_FIELDS[key], v, source, f"eval.{key}") for key, v in d.items()}
    return EvalSpec(**checked)


def _expand(sweep: str, fixed: dict[str, Any], grids: list[dict[str, list]],
            eval_spec: EvalSpec) -> list[Trial]:
    """Cross products of the grids, with points that differ only in `epochs` merged into
    one trial with milestones (epochs is left out of the product, not expanded)."""
    defaults = {axis: default for axis, (_, default) in AXES.items() if default is not ...}
    groups: dict[tuple, set[int]] = {}
    for grid in grids:
        axes = [a for a in grid if a != "epochs"]
        epochs = grid.get("epochs") or [fixed.get("epochs", defaults["epochs"])]
        for combo in itertools.product(*(grid[a] for a in axes)):
            point = {**defaults, **fixed, **dict(zip(axes, combo, strict=True))}
            key = tuple((a, point[a]) for a in AXES if a != "epochs")
            groups.setdefault(key, set()).update(epochs)
    trials: list[Trial] = []
    seen: set[str] = set()
    for key, epoch_set in groups.items():
        milestones = tuple(sorted(epoch_set))
        trial = Trial(sweep=sweep, index=len(trials), epochs=milestones[-1],
                      milestones=milestones, eval=eval_spec, **dict(key))
        if trial.trial_id not in seen:
            seen.add(trial.trial_id)
            trials.append(trial)
    return trials


def _check_trials(trials: list[Trial], source: str) -> None:
    """Cross-axis rules that no single axis can check, once per distinct dataset."""
    from suite.data.catalog import is_labelled_dataset
    from suite.metrics.backbones.registry import BACKBONES
    from suite.models import is_conditional

    labelled: dict[str, bool] = {}
    for t in trials:
        if t.dataset not in labelled:
            labelled[t.dataset] = is_labelled_dataset(t.dataset)
        if not labelled[t.dataset]:
            if is_conditional(t.model):
                raise SpecError(source, "model", f"{t.model} is conditional but dataset "
                                f"{quote(t.dataset)} has no labels",
                                "use dcgan/vae, or give the npz file an integer `y` array")
            for name in t.eval.backbones:
                if BACKBONES.tags(name).get("needs_labels"):
                    raise SpecError(source, "eval.backbones", f"backbone {name!r} needs labels "
                                    f"(it is trained on them), but dataset {quote(t.dataset)} "
                                    "has none", "use `backbones: [inception]` (or []), or give "
                                    "the npz file an integer `y` array")
        if t.max_train_images is not None:
            check_batch_fill(t, t.max_train_images, source)
        if t.jit_compile and t.workers > 1:
            raise SpecError(source, "jit_compile", f"XLA compiles one worker's step, but a "
                            f"trial has workers {t.workers} (Horovod's collectives are not "
                            "XLA operations)", "set `jit_compile: false` for multi-worker "
                            "trials, or give XLA trials `workers: 1`")
