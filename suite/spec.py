"""Sweep files -> validated, frozen trials.

A sweep file is YAML with `name`, `dataset`, `grid` (axis -> list, or a list of
such mappings whose cross products are united, as in scikit-learn's
ParameterGrid), `fixed` (axis -> scalar) and `eval`. Every problem is reported
as a SpecError naming the file and the field, before anything runs.

The `epochs` axis does not multiply trials: a grid with epochs [5, 20] trains
one run for 20 epochs and writes rows at the milestones 5 and 20.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from suite.errors import SpecError
from suite.models import MODELS, UPSAMPLERS
from suite.registry import UnknownNameError

CONFIGS_PACKAGE = "suite.configs"
TOP_LEVEL_KEYS = ("name", "dataset", "grid", "fixed", "eval", "description")
LR_SCALINGS = ("none", "linear", "sqrt")
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclass(frozen=True)
class EvalSpec:
    """How samples are evaluated at each milestone (used by suite.metrics)."""

    n_samples: int = 10000
    backbones: tuple[str, ...] = ("domain",)
    batch_size: int = 500


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


def _positive_int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"must be a whole number, got {value!r}")
    if value <= 0:
        raise ValueError(f"must be positive, got {value}")
    return value


def _non_negative_int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"must be a whole number >= 0, got {value!r}")
    return value


def _positive_float(value: Any) -> float:
    if isinstance(value, str):  # YAML 1.1 reads `1e-4` (no dot) as a string
        try:
            value = float(value)
        except ValueError:
            raise ValueError(f"must be a number, got {value!r}") from None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"must be a number, got {value!r}")
    if not value > 0 or value != value or value == float("inf"):
        raise ValueError(f"must be a positive finite number, got {value}")
    return float(value)


def _optional_positive_int(value: Any) -> int | None:
    return None if value is None else _positive_int(value)


def _name_in(registry_check: Callable[[str], None]) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        if not isinstance(value, str):
            raise ValueError(f"must be a name, got {value!r}")
        registry_check(value)
        return value

    return check


def _one_of(choices: tuple[str, ...]) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        if value not in choices:
            raise ValueError(f"unknown value {value!r}; known: {', '.join(choices)}")
        return value

    return check


def _dataset_name(value: Any) -> str:
    from suite.data import check_dataset_name  # data imports no TensorFlow

    if not isinstance(value, str):
        raise ValueError(f"must be a dataset name, got {value!r}")
    check_dataset_name(value)
    return value


# axis -> (validator, default). A default of `...` means the axis is required.
AXES: dict[str, tuple[Callable[[Any], Any], Any]] = {
    "dataset": (_dataset_name, ...),
    "model": (_name_in(MODELS.check), ...),
    "upsampling": (_name_in(UPSAMPLERS.check), "transpose"),
    "latent_dim": (_positive_int, 100),
    "epochs": (_positive_int, 1),
    "seed": (_non_negative_int, 0),
    "batch_size": (_positive_int, 256),
    "lr": (_positive_float, 1e-4),
    "lr_scaling": (_one_of(LR_SCALINGS), "none"),
    "kernel_size": (_positive_int, 5),
    "workers": (_positive_int, 1),
    "max_train_images": (_optional_positive_int, None),
}

EVAL_FIELDS: dict[str, Callable[[Any], Any]] = {
    "n_samples": _positive_int,
    "batch_size": _positive_int,
    "backbones": lambda v: v,  # checked against the backbone registry by suite.metrics
}


# --- loading ------------------------------------------------------------------------------


def builtin_sweeps() -> list[str]:
    """Names of the sweep files shipped in suite/configs."""
    files = resources.files(CONFIGS_PACKAGE).iterdir()
    return sorted(f.name[: -len(".yaml")] for f in files if f.name.endswith(".yaml"))


def read_sweep_text(path_or_name: str) -> tuple[str, str]:
    """Return (source label, YAML text) for a file path or a built-in sweep name."""
    path = Path(path_or_name)
    if path.is_file():
        return str(path), path.read_text()
    if path_or_name in builtin_sweeps():
        ref = resources.files(CONFIGS_PACKAGE) / f"{path_or_name}.yaml"
        return f"{path_or_name} (built-in {ref})", ref.read_text()
    if path.suffix in (".yaml", ".yml") or "/" in path_or_name:
        raise SpecError(path_or_name, "file", "no such file",
                        "give the path of a sweep YAML file")
    raise SpecError(
        path_or_name, "sweep", "neither a file nor a built-in sweep",
        f"give a sweep YAML path or one of: {', '.join(builtin_sweeps())}",
    )


def load_sweep(path_or_name: str) -> SweepSpec:
    """Parse and validate a sweep file (or built-in name) into frozen trials."""
    source, text = read_sweep_text(path_or_name)
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "YAML"
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise SpecError(source, where, f"malformed YAML: {problem}",
                        "fix the YAML syntax (indentation, colons, brackets)") from None
    return parse_sweep(raw, source)


def parse_sweep(raw: Any, source: str) -> SweepSpec:
    if not isinstance(raw, Mapping):
        raise SpecError(source, "(top level)", "a sweep file must be a mapping",
                        "start with `name: ...`, `dataset: ...`, `grid: ...`")
    unknown = [k for k in raw if k not in TOP_LEVEL_KEYS]
    if unknown:
        raise SpecError(source, str(unknown[0]), "unknown key",
                        f"use only: {', '.join(TOP_LEVEL_KEYS)} (axes go under grid or fixed)")
    name = raw.get("name")
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        raise SpecError(source, "name",
                        f"must be a plain name (letters, digits, _.-), got {name!r}",
                        "add e.g. `name: my-sweep`; results go to <out>/<name>/")
    fixed = _mapping(raw.get("fixed", {}), source, "fixed")
    grids = _grids(raw.get("grid", {}), source)
    eval_spec = _eval_spec(raw.get("eval", {}), source)
    if "dataset" in raw:
        if "dataset" in fixed:
            raise SpecError(source, "fixed.dataset", "dataset is given twice",
                            "keep either the top-level `dataset` or `fixed.dataset`")
        _validate_axis("dataset", raw["dataset"], source, "dataset")

    for axis, value in fixed.items():
        _check_axis_name(axis, source, f"fixed.{axis}")
        if isinstance(value, list):
            raise SpecError(source, f"fixed.{axis}", "fixed takes one value, not a list",
                            "move the axis to grid to sweep over it")
    fixed = {axis: _validate_axis(axis, v, source, f"fixed.{axis}") for axis, v in fixed.items()}
    if "dataset" in raw:
        fixed["dataset"] = raw["dataset"]

    points: list[dict[str, Any]] = []
    for g, grid in enumerate(grids):
        label = "grid" if len(grids) == 1 else f"grid[{g}]"
        for axis in grid:
            if axis in fixed:
                raise SpecError(source, f"{label}.{axis}",
                                "axis is in both grid and fixed (or top level)",
                                "keep it in one place")
        grid = {axis: _validate_values(axis, values, source, f"{label}.{axis}")
                for axis, values in grid.items()}
        axes = list(grid)
        for combo in itertools.product(*(grid[a] for a in axes)):
            point = {**fixed, **dict(zip(axes, combo, strict=True))}
            for axis, (_, default) in AXES.items():
                if axis not in point:
                    if default is ...:
                        raise SpecError(source, axis, "required axis is missing",
                                        f"add `{axis}: ...` under fixed (or a list under grid)")
                    point[axis] = default
            _check_point(point, source)
            points.append(point)
    trials = tuple(_points_to_trials(points, name, eval_spec))
    return SweepSpec(name=name, source=source, trials=trials,
                     description=str(raw.get("description", "")))


def _mapping(value: Any, source: str, field: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise SpecError(source, field,
                        f"must be a mapping (axis: value), got {type(value).__name__}")
    return dict(value)


def _grids(value: Any, source: str) -> list[dict[str, Any]]:
    if isinstance(value, list):
        if not value:
            raise SpecError(source, "grid", "an empty list of grids has no trials",
                            "give at least one mapping of axis -> list")
        return [_mapping(g, source, f"grid[{i}]") for i, g in enumerate(value)]
    return [_mapping(value, source, "grid")]


def _check_axis_name(axis: str, source: str, field: str) -> None:
    if axis not in AXES:
        raise SpecError(source, field, "unknown axis", f"known axes: {', '.join(AXES)}")


def _validate_values(axis: str, values: Any, source: str, field: str) -> list[Any]:
    _check_axis_name(axis, source, field)
    if not isinstance(values, list) or not values:
        raise SpecError(source, field, "a grid axis takes a non-empty list of values",
                        f"write `{axis}: [a, b]`, or move a single value to fixed")
    return [_validate_axis(axis, v, source, field) for v in values]


def _validate_axis(axis: str, value: Any, source: str, field: str) -> Any:
    validator, _ = AXES[axis]
    try:
        return validator(value)
    except UnknownNameError as exc:
        raise SpecError(source, field, str(exc), f"use one of: {', '.join(exc.known)}") from None
    except ValueError as exc:
        raise SpecError(source, field, str(exc)) from None


def _check_point(point: dict[str, Any], source: str) -> None:
    """Cross-axis rules that no single axis can check."""
    from suite.data import is_labelled_dataset
    from suite.models import is_conditional

    if is_conditional(point["model"]) and not is_labelled_dataset(point["dataset"]):
        raise SpecError(source, "model", f"{point['model']} is conditional but dataset "
                        f"{point['dataset']!r} has no labels",
                        "use dcgan/vae, or give the npz file an integer `y` array")
    cap = point["max_train_images"]
    if cap is not None and cap < point["batch_size"] * point["workers"]:
        raise SpecError(source, "max_train_images",
                        f"{cap} images cannot fill one global batch of "
                        f"{point['batch_size'] * point['workers']}",
                        "raise max_train_images or lower batch_size")


def _eval_spec(value: Any, source: str) -> EvalSpec:
    d = _mapping(value, source, "eval")
    for key, v in d.items():
        if key not in EVAL_FIELDS:
            raise SpecError(source, f"eval.{key}", "unknown key",
                            f"eval takes: {', '.join(EVAL_FIELDS)}")
        try:
            EVAL_FIELDS[key](v)
        except ValueError as exc:
            raise SpecError(source, f"eval.{key}", str(exc)) from None
    backbones = d.get("backbones", EvalSpec.backbones)
    if isinstance(backbones, str):
        backbones = [backbones]
    if not isinstance(backbones, list | tuple) or not all(isinstance(b, str) for b in backbones):
        raise SpecError(source, "eval.backbones", "must be a list of backbone names",
                        "write e.g. `backbones: [domain]`")
    return EvalSpec(n_samples=d.get("n_samples", EvalSpec.n_samples),
                    batch_size=d.get("batch_size", EvalSpec.batch_size),
                    backbones=tuple(backbones))


def _points_to_trials(points: list[dict[str, Any]], sweep: str, eval_spec: EvalSpec) -> list[Trial]:
    """Merge grid points that differ only in `epochs` into one trial with milestones."""
    groups: dict[tuple, set[int]] = {}
    for p in points:
        key = tuple((a, p[a]) for a in AXES if a != "epochs")
        groups.setdefault(key, set()).add(p["epochs"])
    trials: list[Trial] = []
    seen: set[str] = set()
    for key, epochs in groups.items():
        d = dict(key)
        milestones = tuple(sorted(epochs))
        trial = Trial(sweep=sweep, index=len(trials), epochs=milestones[-1], milestones=milestones,
                      eval=eval_spec, **d)
        if trial.trial_id not in seen:
            seen.add(trial.trial_id)
            trials.append(trial)
    return trials
