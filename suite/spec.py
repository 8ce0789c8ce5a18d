"""Sweep files -> validated, frozen trials.

A sweep file is YAML with `name`, `dataset`, `grid` (axis -> list, or a list of
such mappings whose cross products are united, as in scikit-learn's
ParameterGrid), `fixed` (axis -> scalar) and `eval`. Every problem is reported
as one SpecError naming the file and the field, with a fix, before anything runs.
This module is the one place sweep validation lives: every axis has bounds, the
grid's size is known before it is expanded, and eval backbones are checked
against their registry. Reading the YAML itself safely is suite/sweep_yaml.py.

The `epochs` axis does not multiply trials: a grid with epochs [5, 20] trains
one run for 20 epochs and writes rows at the milestones 5 and 20.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from suite import sweep_values as sv
from suite.errors import SpecError
from suite.models import MODELS, UPSAMPLERS
from suite.models.precision import PRECISIONS
from suite.sweep_yaml import (  # noqa: F401  (builtin_sweeps, read_sweep_text: re-exported)
    CONFIGS_PACKAGE,
    builtin_sweeps,
    join_field,
    load_yaml,
    quote,
    read_sweep_text,
)

TOP_LEVEL_KEYS = ("name", "dataset", "grid", "fixed", "eval", "description")
LR_SCALINGS = ("none", "linear", "sqrt")
# One safe path component (results go to <out>/<name>/): no '/', never '.' or '..'.
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*\Z")
MAX_NAME_CHARS = 100
MAX_DESCRIPTION_CHARS = 10_000
MAX_TRIALS = 10_000  # counted from the axis lengths, before the grid is expanded
MAX_MILESTONES = 100  # values of the epochs axis in one grid
MAX_DEPTH = 32  # stride-1 blocks of the generator/decoder (far above any real network)
WIDTH_RANGE = (1 / 16, 8.0)  # channel multipliers: 4 channels at the narrowest layer .. 8x


@dataclass(frozen=True)
class EvalSpec:
    """How samples are evaluated at each milestone (used by suite.metrics)."""

    n_samples: int = 10000
    backbones: tuple[str, ...] = ("domain",)
    batch_size: int = 500
    cas: bool = False  # classification accuracy score of conditional models (trains a network)


@dataclass(frozen=True)
class Trial:
    """One training run: a point of the grid, with all its epoch milestones."""

    sweep: str
    index: int
    dataset: str
    model: str
    upsampling: str
    latent_dim: int
    epochs: int
    milestones: tuple[int, ...]
    seed: int
    batch_size: int
    lr: float
    lr_scaling: str
    kernel_size: int
    workers: int
    max_train_images: int | None
    eval: EvalSpec
    # Axes added after trial ids were in use: at their defaults config() leaves them out,
    # so existing sweeps keep their ids (and results) and old config JSON still loads.
    steps_per_call: int | str = "auto"  # training steps per compiled call, or "auto"
    precision: str = "fp32"  # fp32 | mixed_bfloat16 | mixed_float16
    depth: int = 1  # stride-1 blocks of the generator/decoder (the tutorial network: 1)
    width: float = 1.0  # channel-width multiplier of every network (the tutorial: 1.0)
    beta1: float = 0.9  # Adam's first-moment decay (tutorials 0.9, DCGAN paper 0.5)

    @property
    def trial_id(self) -> str:
        return trial_id(self)

    @property
    def global_batch_size(self) -> int:
        return self.batch_size * self.workers

    @property
    def lr_effective(self) -> float:
        """Learning rate after scaling by the number of workers."""
        factor = {"none": 1.0, "linear": float(self.workers), "sqrt": self.workers**0.5}
        return self.lr * factor[self.lr_scaling]

    def config(self) -> dict[str, Any]:
        """The resolved configuration that identifies the trial (no sweep name/index)."""
        d = dataclasses.asdict(self)
        d.pop("sweep")
        d.pop("index")
        d["milestones"] = list(self.milestones)
        d["eval"]["backbones"] = list(self.eval.backbones)
        if not self.eval.cas:  # the default leaves trial ids as they were before the key
            del d["eval"]["cas"]
        for axis in LATE_AXES:
            if d[axis] == AXES[axis][1]:
                del d[axis]
        return d

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Trial:
        d = json.loads(text)
        d["milestones"] = tuple(d["milestones"])
        d["eval"] = EvalSpec(**{**d["eval"], "backbones": tuple(d["eval"]["backbones"])})
        return cls(**d)


@dataclass(frozen=True)
class SweepSpec:
    """A parsed sweep file: its name, where it came from, and its trials."""

    name: str
    source: str
    trials: tuple[Trial, ...]
    description: str = ""

    @property
    def datasets(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(t.dataset for t in self.trials))


def trial_id(trial: Trial) -> str:
    """A stable 12-hex-digit hash of the trial's resolved configuration."""
    canonical = json.dumps(trial.config(), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:12]


# --- axes -----------------------------------------------------------------------------


# axis -> (validator, default). A default of `...` means the axis is required.
# The upper bounds are far above any real run; they stop typos and hostile files.
AXES: dict[str, tuple[Callable[[Any], Any], Any]] = {
    "dataset": (sv.dataset_name, ...),
    "model": (sv.name_in(MODELS), ...),
    "upsampling": (sv.name_in(UPSAMPLERS), "transpose"),
    "latent_dim": (sv.whole_number(1, 4096), 100),
    "epochs": (sv.whole_number(1, 10_000), 1),
    "seed": (sv.whole_number(0, 2**32 - 1), 0),
    "batch_size": (sv.whole_number(1, 65_536), 256),
    "lr": (sv.number(10.0), 1e-4),
    "lr_scaling": (sv.one_of(LR_SCALINGS), "none"),
    "kernel_size": (sv.whole_number(1, 31), 5),
    "workers": (sv.whole_number(1, 1024), 1),
    "max_train_images": (sv.optional(sv.whole_number(1, 100_000_000)), None),
    "steps_per_call": (sv.steps_per_call, "auto"),
    "precision": (sv.one_of(PRECISIONS), "fp32"),
    "depth": (sv.whole_number(0, MAX_DEPTH), 1),
    "width": (sv.number_between(*WIDTH_RANGE), 1.0),
    "beta1": (sv.number_between(0.0, 1.0, high_open=True), 0.9),
}
# Axes that are not in the trial id at their default (see Trial.config).
LATE_AXES: tuple[str, ...] = ("steps_per_call", "precision", "depth", "width", "beta1")

EVAL_FIELDS: dict[str, Callable[[Any], Any]] = {
    "n_samples": sv.eval_samples,
    "batch_size": sv.whole_number(1, 10_000),
    "backbones": sv.backbone_names,  # names in suite.metrics.features.BACKBONES
    "cas": sv.flag,
}


def _validate_axis(axis: str, value: Any, source: str, field: str) -> Any:
    return sv.validate(AXES[axis][0], value, source, field)


# --- batches ------------------------------------------------------------------------------


def batch_fill_problem(n_images: int, global_batch: int) -> str | None:
    """The one rule: a run needs at least one full global batch (every step drops the
    remainder, so fewer images would give zero steps). None when it holds."""
    if n_images >= global_batch:
        return None
    return f"{n_images:,} training images cannot fill one global batch of {global_batch:,}"


def check_batch_fill(trial: Trial, n_train_images: int, source: str) -> None:
    """Raise SpecError unless `n_train_images` (after the trial's max_train_images cap)
    fill one global batch (workers x batch_size)."""
    cap = trial.max_train_images
    n = n_train_images if cap is None else min(n_train_images, cap)
    problem = batch_fill_problem(n, trial.global_batch_size)
    if problem:
        capped = " (max_train_images)" if cap is not None and cap <= n_train_images else ""
        raise SpecError(source, "batch_size",
                        f"trial {trial.index} ({trial.trial_id}) on {quote(trial.dataset)}"
                        f"{capped}: {problem} (workers {trial.workers} x batch_size "
                        f"{trial.batch_size})",
                        "lower batch_size or workers, or raise max_train_images / use more data")


# --- loading ------------------------------------------------------------------------------


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
    return checked


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
    from suite.data import is_labelled_dataset
    from suite.metrics.features import BACKBONES
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
