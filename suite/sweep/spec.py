"""Sweep files -> validated, frozen trials.

A sweep file is YAML with `name`, `dataset`, `grid` (axis -> list, or a list of
such mappings whose cross products are united, as in scikit-learn's
ParameterGrid), `fixed` (axis -> scalar) and `eval`. Every problem is reported
as one SpecError naming the file and the field, with a fix, before anything runs.
This module is the one place sweep validation lives: every axis has bounds, the
grid's size is known before it is expanded, and eval backbones are checked
against their registry. Reading the YAML itself safely is suite/sweep/yaml_reader.py.

The `epochs` axis does not multiply trials: a grid with epochs [5, 20] trains
one run for 20 epochs and writes rows at the milestones 5 and 20.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from suite.common.errors import SpecError
from suite.common.messages import quote
from suite.models import MODELS, UPSAMPLERS
from suite.models.precision import PRECISIONS
from suite.store.disk import CHECKPOINT_POLICIES, KEEP
from suite.sweep import values as sv
from suite.training.batch_rule import batch_fill_problem

TOP_LEVEL_KEYS = ("name", "dataset", "grid", "fixed", "eval", "description", "checkpoints")
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
    jit_compile: bool = False  # XLA-compile the training step (one worker only)
    # What the trial keeps on disk (suite/store/disk.py): never part of the trial id, so
    # a sweep can change it (or `--checkpoints` override it) and keep its results.
    checkpoints: str = KEEP

    @functools.cached_property
    def trial_id(self) -> str:
        """Hashed once per Trial (a 10,000-trial plan asks for every id, some twice)."""
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
        # Shallow field copies, not dataclasses.asdict (its deep copy was most of a big
        # plan's time); the JSON, hence every trial id, is the same.
        d = {f.name: getattr(self, f.name) for f in _TRIAL_FIELDS}
        d["eval"] = {f.name: getattr(self.eval, f.name) for f in dataclasses.fields(EvalSpec)}
        d.pop("sweep")
        d.pop("index")
        for key in POLICY_KEYS:
            d.pop(key)
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


_TRIAL_FIELDS = dataclasses.fields(Trial)


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
    "jit_compile": (sv.flag, False),
    "checkpoints": (sv.one_of(CHECKPOINT_POLICIES), KEEP),
}
# Axes that are not in the trial id at their default (see Trial.config).
LATE_AXES: tuple[str, ...] = ("steps_per_call", "precision", "depth", "width", "beta1",
                              "jit_compile")
# Policies: one value per sweep (top level or fixed, never grid), never in the trial id.
POLICY_KEYS: tuple[str, ...] = ("checkpoints",)

EVAL_FIELDS: dict[str, Callable[[Any], Any]] = {
    "n_samples": sv.eval_samples,
    "batch_size": sv.whole_number(1, 10_000),
    "backbones": sv.backbone_names,  # names in suite.metrics.backbones.registry.BACKBONES
    "cas": sv.flag,
}


def _validate_axis(axis: str, value: Any, source: str, field: str) -> Any:
    return sv.validate(AXES[axis][0], value, source, field)


# --- batches ------------------------------------------------------------------------------


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
