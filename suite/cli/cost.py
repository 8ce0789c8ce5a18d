"""A sweep's training cost, estimated before it runs, so `genbench plan` can say how long.

A trial's training time is its warm-up (tracing and compiling the step, once per
process) plus its steps times the seconds per step of its configuration. The
seconds per step come, best first, from:

- `rows`: earlier result rows of the same configuration on this machine (the results
  store under --out): what the trainer measured, warm-up included;
- `measured`: a short measured run of the configuration's real training step
  (`genbench plan --measure`, suite/cli/step_probe.py);
- `table`: a per-step overhead plus a per-image cost per family at width 1 scaled by
  width^2 (docs/sweeps.md gives the runs they come from), good to a factor of two.

One-time costs (the domain classifier when its cache is cold, reference statistics)
are added once. Not modelled: evaluation at milestones, and other hardware than the
machine the figures came from. Workers split a trial's images but not its total work,
so the total is in hours of one machine; a sweep's wall time is that divided by the
machines running it at once. Each source has an uncertainty factor: the estimate is
stated as a range, low = estimate / factor, high = estimate x factor.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

# The table source, from the demo and smoke sweeps on a shared 2-core AVX-512 machine
# (docs/sweeps.md): a Keras step on 2 cores costs about PER_STEP_S whatever its size,
# then batch x width^2 / images/s at width 1 with a transposed-convolution decoder.
PER_STEP_S = 0.020
IMAGES_PER_SEC: dict[str, float] = {"dcgan": 380.0, "vae": 550.0, "cgan": 400.0, "cvae": 400.0}
# Resize-convolution convolves at the larger size: dcgan nearest took 2.9 h vs 2.2 h.
UPSAMPLING_SPEED: dict[str, float] = {"transpose": 1.0, "subpixel": 1.0, "nearest": 0.75,
                                      "bilinear": 0.7}
DEFAULT_IMAGES_PER_SEC = 400.0
COMPILE_S = 2.5  # warm-up calls of one process (tracing, graph optimisation)
# Training-split sizes of the built-in datasets (user npz files: max_train_images only).
TRAIN_IMAGES: dict[str, int] = {"mnist": 60_000, "fashion_mnist": 60_000, "cifar10": 50_000}
# Uncertainty factor per source: rows vary with the machine's load (shared nodes); a
# short measured run sees one moment of it; the table does not know this machine.
UNCERTAINTY = {"rows": 1.3, "measured": 1.5, "table": 2.0}


@dataclass(frozen=True)
class StepTime:
    """Seconds per training step of one configuration, its warm-up, and where from."""

    seconds_per_step: float
    compile_s: float
    source: str  # rows | measured | table


@dataclass(frozen=True)
class OneTimeCost:
    """Work done once for the whole sweep (a classifier to train, statistics to compute)."""

    what: str
    seconds: float


@dataclass(frozen=True)
class CostEstimate:
    """Hours of training of a sweep on one machine (see the module docstring)."""

    machine_hours: float  # trials that could be estimated, plus one-time costs
    longest_trial_hours: float
    images: int  # training images of those trials (epochs x images per epoch)
    unestimated: int  # trials of a user dataset without max_train_images
    low_hours: float = 0.0
    high_hours: float = 0.0
    one_time: tuple[OneTimeCost, ...] = ()
    sources: dict[str, int] = field(default_factory=dict)  # trials per step-time source

    @property
    def label(self) -> str:
        used = ", ".join(f"{n} from {s}" for s, n in sorted(self.sources.items()))
        return (f"estimate: warm-up + steps x seconds per step ({used or 'no trials'}); "
                "evaluation not included; see docs/sweeps.md")


def step_key(trial: Any) -> tuple:
    """What a step's time depends on: the same key for a Trial and for a result row."""
    return tuple(getattr(trial, name) for name in STEP_FIELDS)


STEP_FIELDS = ("dataset", "model", "upsampling", "latent_dim", "batch_size", "kernel_size",
               "workers", "precision", "depth", "width", "jit_compile")


def table_step_time(trial: Any) -> StepTime:
    rate = IMAGES_PER_SEC.get(trial.model, DEFAULT_IMAGES_PER_SEC)
    rate *= UPSAMPLING_SPEED.get(trial.upsampling, 1.0) / max(trial.width, 1 / 16) ** 2
    return StepTime(PER_STEP_S + trial.batch_size / rate, COMPILE_S, "table")


def images_per_epoch(trial: Any) -> int | None:
    full = TRAIN_IMAGES.get(trial.dataset)
    cap = trial.max_train_images
    if full is None:
        return cap
    return full if cap is None else min(full, cap)


def trial_steps(trial: Any) -> int | None:
    """Training steps of one trial's each worker, None when its data size is unknown."""
    images = images_per_epoch(trial)
    if images is None:
        return None
    return trial.epochs * max(images // (trial.batch_size * trial.workers), 1)


def trial_seconds(trial: Any, step: StepTime) -> float | None:
    """Wall seconds of one trial's training (its workers step together)."""
    steps = trial_steps(trial)
    return None if steps is None else step.compile_s + steps * step.seconds_per_step


def estimate_cost(trials: Iterable[Any], step_times: Mapping[tuple, StepTime] | None = None,
                  one_time: Sequence[OneTimeCost] = ()) -> CostEstimate:
    """The sweep's hours: each trial from its best-known step time, plus one-time costs."""
    step_times = step_times or {}
    total, low, high, longest, images, unknown = 0.0, 0.0, 0.0, 0.0, 0, 0
    sources: dict[str, int] = {}
    for t in trials:
        step = step_times.get(step_key(t)) or table_step_time(t)
        seconds = trial_seconds(t, step)
        if seconds is None:
            unknown += 1
            continue
        factor = UNCERTAINTY[step.source]
        longest = max(longest, seconds)
        seconds *= t.workers  # machine time: each worker holds its own cores
        total, low, high = total + seconds, low + seconds / factor, high + seconds * factor
        images += t.epochs * (images_per_epoch(t) or 0)
        sources[step.source] = sources.get(step.source, 0) + 1
    fixed = sum(c.seconds for c in one_time)
    return CostEstimate(machine_hours=(total + fixed) / 3600, longest_trial_hours=longest / 3600,
                        images=images, unestimated=unknown,
                        low_hours=(low + fixed / 2) / 3600, high_hours=(high + fixed * 2) / 3600,
                        one_time=tuple(one_time), sources=sources)


def format_hours(hours: float) -> str:
    if hours < 2 / 60:
        return f"{hours * 3600:.0f} s"
    if hours < 2:
        return f"{hours * 60:.0f} min"
    return f"{hours:,.1f} h"
