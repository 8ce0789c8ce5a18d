"""How much of the machine a trial used: its FLOPs per image, the device's peak, MFU.

Counted once per trial, before training: the training step's matmul FLOPs from the
built networks (suite/models/flops.py), the evaluation backbones' forward FLOPs, and
the peak of the device (a GPU's datasheet, else a cached matmul calibration of this
CPU: suite/machine/peak.py). Each milestone row then turns its images/s into achieved
TFLOP/s and MFU, and says how its peak was obtained and whether it is trusted (a
calibration that shared its cores is a lower bound; a rate above the peak raises it, so
MFU is never above 1). A count that cannot be made is missing (NaN), never guessed, and
never fails the trial.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from suite.machine.peak import Peak, machine_peak, utilisation_columns


@dataclass(frozen=True)
class Utilisation:
    """One trial's FLOP counts and peak; `columns` gives a milestone row's share."""

    flops_per_image: int | None
    eval_flops_per_image: int | None
    peak: Peak
    workers: int

    def columns(self, images_per_sec: float) -> dict[str, Any]:
        return utilisation_columns(self.flops_per_image, images_per_sec, self.peak,
                                   devices=self.workers,
                                   eval_flops_per_image=self.eval_flops_per_image)


def _warn(what: str, exc: Exception) -> None:
    print(f"genbench: {what} not counted ({type(exc).__name__}: {exc}); its columns are NaN",
          file=sys.stderr, flush=True)


def count_eval_flops(backbones: Mapping[str, Any], image_shape: tuple[int, ...]) -> int | None:
    """The backbones' forward FLOPs per image, summed; None if none can be counted."""
    from suite.models.flops import eval_flops_per_image  # Keras: only where a trial runs

    counts = []
    for backbone in backbones.values():
        try:
            counts.append(eval_flops_per_image(backbone, (*image_shape[:2], 3)))
        except Exception as exc:  # a backbone the counter does not know
            _warn("an evaluation backbone's FLOPs were", exc)
    known = [c for c in counts if c is not None]
    return sum(known) if known else None


def measure_utilisation(model: Any, backbones: Mapping[str, Any], image_shape: tuple[int, ...],
                        precision: str, workers: int) -> Utilisation:
    """Count the trial's FLOPs and find its device's peak (cached per machine)."""
    from suite.models.flops import training_flops_per_image  # Keras: only where a trial runs

    try:
        flops = training_flops_per_image(model)
    except Exception as exc:  # e.g. a network with a layer the counter has no formula for
        _warn("the training step's FLOPs were", exc)
        flops = None
    try:
        peak = machine_peak(precision)
    except Exception as exc:  # no usable calibration: MFU unknown, the trial goes on
        _warn("the device's peak was", exc)
        peak = Peak(float("nan"), "unknown", None)
    return Utilisation(flops, count_eval_flops(backbones, image_shape), peak, workers)
