"""A sweep's training cost, estimated before it runs, so `genbench plan` can say hours.

An ESTIMATE, good to a factor of about two: training images (epochs x images per
epoch, summed over trials) divided by images/s measured on this project's 2-core
CPU machines at the tutorial settings (width 1, kernel 5; docs/sweeps.md,
built-in sweeps and their costs), scaled by 1/width^2 (a network's convolution
work grows with the square of its channel width). Not modelled: evaluation
(seconds per milestone), depth, kernel size, batch size, precision, other
hardware. Workers split a trial's images but not its total work, so the total
is in hours of one such machine; the wall time of a sweep is that divided by the
machines running it at once.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

# images/s per family at width 1 with a transposed-convolution decoder, 2 quiet cores:
# dcgan 3.0M images (50 epochs of MNIST) in 2.2 h, vae 0.6M in 0.3 h, cgan/cvae 2.5M
# (50 epochs of CIFAR-10) in 1.3-2.1 h (seed-study's per-trial figures, docs/sweeps.md).
IMAGES_PER_SEC: dict[str, float] = {"dcgan": 380.0, "vae": 550.0, "cgan": 400.0, "cvae": 400.0}
# Resize-convolution convolves at the larger size: dcgan nearest took 2.9 h vs 2.2 h.
UPSAMPLING_SPEED: dict[str, float] = {"transpose": 1.0, "subpixel": 1.0, "nearest": 0.75,
                                      "bilinear": 0.7}
# Training-split sizes of the built-in datasets (user npz files: max_train_images only).
TRAIN_IMAGES: dict[str, int] = {"mnist": 60_000, "fashion_mnist": 60_000, "cifar10": 50_000}
DEFAULT_IMAGES_PER_SEC = 400.0
LABEL = ("estimate: training only, images / (images/s measured on a 2-core CPU at width 1, "
         "scaled by 1/width^2); see docs/sweeps.md")


@dataclass(frozen=True)
class CostEstimate:
    """Hours of training of a sweep on one 2-core CPU machine (see the module docstring)."""

    machine_hours: float  # sum over the trials that could be estimated
    longest_trial_hours: float
    images: int  # training images of those trials (epochs x images per epoch)
    unestimated: int  # trials of a user dataset without max_train_images
    label: str = LABEL


def trial_hours(trial: Any) -> float | None:
    """Estimated training hours of one trial, or None when its data size is unknown."""
    images = images_per_epoch(trial)
    if images is None:
        return None
    rate = IMAGES_PER_SEC.get(trial.model, DEFAULT_IMAGES_PER_SEC)
    rate *= UPSAMPLING_SPEED.get(trial.upsampling, 1.0) / max(trial.width, 1 / 16) ** 2
    return trial.epochs * images / rate / 3600.0


def images_per_epoch(trial: Any) -> int | None:
    full = TRAIN_IMAGES.get(trial.dataset)
    cap = trial.max_train_images
    if full is None:
        return cap
    return full if cap is None else min(full, cap)


def estimate_cost(trials: Iterable[Any]) -> CostEstimate:
    total, longest, images, unknown = 0.0, 0.0, 0, 0
    for t in trials:
        hours = trial_hours(t)
        if hours is None:
            unknown += 1
            continue
        total += hours
        longest = max(longest, hours)
        images += t.epochs * (images_per_epoch(t) or 0)
    return CostEstimate(machine_hours=total, longest_trial_hours=longest, images=images,
                        unestimated=unknown)


def format_hours(hours: float) -> str:
    if hours < 1 / 60:
        return f"{hours * 3600:.0f} s"
    if hours < 2:
        return f"{hours * 60:.0f} min"
    return f"{hours:,.1f} h"
