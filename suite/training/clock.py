"""Throughput clock: measures training steps only.

The first `warmup_steps` steps of every process (tracing and graph compilation,
again after a resume) are timed apart as compile time; evaluation, sampling and
checkpointing happen outside any timed interval. So images/s is what the
hardware sustains while training (big_vision's convention). A step's time runs
from the end of the previous step to the end of this one, so input-pipeline
stalls count against throughput.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class ClockSummary:
    images_per_sec: float
    step_time_p50_ms: float
    step_time_p95_ms: float
    epoch_time_s: float
    compile_time_s: float
    train_time_s: float
    steps: int
    warmup_steps: int


@dataclass
class ThroughputClock:
    """Collects step and epoch wall times; survives checkpoints via `state`."""

    images_per_step: int
    warmup_steps: int = 2
    step_times: list[float] = field(default_factory=list)
    step_warm: list[bool] = field(default_factory=list)
    step_epoch: list[int] = field(default_factory=list)
    epoch_times: dict[int, float] = field(default_factory=dict)
    _warm_left: int = -1

    def start_process(self) -> None:
        """A fresh process traces again: its next steps are warm-up."""
        self._warm_left = self.warmup_steps

    def record_step(self, seconds: float, epoch: int) -> None:
        if self._warm_left < 0:
            self.start_process()
        self.step_times.append(seconds)
        self.step_warm.append(self._warm_left > 0)
        self.step_epoch.append(epoch)
        self._warm_left = max(0, self._warm_left - 1)

    def record_epoch(self, epoch: int, seconds: float) -> None:
        self.epoch_times[epoch] = seconds

    def summary(self) -> ClockSummary:
        times = np.asarray(self.step_times, dtype=np.float64)
        warm = np.asarray(self.step_warm, dtype=bool)
        epochs = np.asarray(self.step_epoch, dtype=np.int64)
        timed = times[~warm]
        nan = float("nan")
        median = float(np.median(timed)) if timed.size else nan
        # An epoch that held compile steps counts them as median steps.
        epoch_walls = [wall - times[warm & (epochs == e)].sum()
                       + np.count_nonzero(warm & (epochs == e)) * median
                       for e, wall in self.epoch_times.items()]
        return ClockSummary(
            images_per_sec=float(self.images_per_step * timed.size / timed.sum())
            if timed.size else nan,
            step_time_p50_ms=1e3 * median,
            step_time_p95_ms=1e3 * float(np.percentile(timed, 95)) if timed.size else nan,
            epoch_time_s=float(np.mean(epoch_walls)) if epoch_walls else nan,
            compile_time_s=float(times[warm].sum()),
            train_time_s=float(times.sum()),
            steps=int(times.size),
            warmup_steps=int(warm.sum()),
        )

    def state(self) -> dict[str, np.ndarray]:
        epochs = sorted(self.epoch_times)
        return {"clock/step_times": np.asarray(self.step_times, dtype=np.float64),
                "clock/step_warm": np.asarray(self.step_warm, dtype=bool),
                "clock/step_epoch": np.asarray(self.step_epoch, dtype=np.int64),
                "clock/epochs": np.asarray(epochs, dtype=np.int64),
                "clock/epoch_times": np.asarray([self.epoch_times[e] for e in epochs])}

    def load_state(self, state: dict[str, np.ndarray]) -> None:
        self.step_times = [float(x) for x in state["clock/step_times"]]
        self.step_warm = [bool(x) for x in state["clock/step_warm"]]
        self.step_epoch = [int(x) for x in state["clock/step_epoch"]]
        self.epoch_times = {int(e): float(t) for e, t in
                            zip(state["clock/epochs"], state["clock/epoch_times"], strict=True)}
