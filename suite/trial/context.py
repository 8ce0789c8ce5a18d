"""What a launcher hands run_trial (RunContext) and gets back (TrialResult)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from suite.sweep.spec import Trial


@dataclass(frozen=True)
class RunContext:
    """Where a trial reads data from and writes results to."""

    out: Path
    data_dir: str | None = None
    inception_weights: str | None = None  # --inception-weights: PATH, "random", or None


@dataclass(frozen=True)
class TrialResult:
    trial_id: str
    status: str  # ok | diverged | failed, or a store state when skipped (busy, ...)
    skipped: bool = False
    error: str = ""
    weights_digest: str = ""


def trial_label(trial: Trial) -> str:
    return (f"{trial.model}/{trial.upsampling} z={trial.latent_dim} seed={trial.seed}"
            + (f" w={trial.workers}" if trial.workers > 1 else ""))
