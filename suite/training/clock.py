"""Throughput clock: times the trainer's calls, and every epoch's whole wall time.

The trainer runs K steps per compiled call and reads the host once per call,
so the clock sees calls, not steps: images/s is images over the seconds of the
timed calls, and the step-time percentiles are over per-step averages within a
call (each step of a call counts as that call's seconds / steps). The first
`warmup_steps` calls of every process (tracing and graph compilation, again
after a resume; one step each) are timed apart as compile time. A call's time
runs from the end of the previous call to the end of this one, so input-pipeline
stalls count against throughput (big_vision's convention); evaluation, sampling
and checkpointing happen outside every timed call.

Beside that step-based view, `epoch_wall_s` is the epoch's whole wall time as
the trainer lived it, from the end of the previous epoch's bookkeeping (or
from when this process started the trial) to the end of the epoch's last
call: what the calls do not contain (model and data setup, restoring a
checkpoint, building input iterators, the auto choice of K) shows as the
difference, so a row never hides it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class ClockSummary:
    images_per_sec: float
    step_time_p50_ms: float  # percentiles over per-step averages within timed calls
    step_time_p95_ms: float
    epoch_time_s: float  # mean over epochs of their calls' span, warm-up as median steps
    compile_time_s: float
    train_time_s: float  # all calls, warm-up included
    steps: int
    warmup_steps: int
    epoch_wall_s: float = float("nan")  # whole wall time of the latest epoch
    wall_time_s: float = float("nan")  # sum of epoch_wall_s over all epochs so far
    calls: int = 0


def weighted_percentile(values: np.ndarray, weights: np.ndarray, q: float) -> float:
    """The q-th percentile of `values` each repeated `weights` times (numpy's linear rule)."""
    if values.size == 0:
        return float("nan")
    return float(np.percentile(np.repeat(values, weights), q))


@dataclass
class ThroughputClock:
    """Collects call and epoch wall times; survives checkpoints via `state`."""

    images_per_step: int
    warmup_steps: int = 2  # warm-up calls per process; the trainer makes them one step each
    call_times: list[float] = field(default_factory=list)
    call_steps: list[int] = field(default_factory=list)
    call_warm: list[bool] = field(default_factory=list)
    call_epoch: list[int] = field(default_factory=list)
    epoch_times: dict[int, float] = field(default_factory=dict)  # first call start -> last end
    epoch_walls: dict[int, float] = field(default_factory=dict)  # the epoch's whole wall time
    _warm_left: int = -1

    def start_process(self) -> None:
        """A fresh process traces again: its next calls are warm-up."""
        self._warm_left = self.warmup_steps

    @property
    def warm_calls_left(self) -> int:
        """How many of this process's next calls are warm-up."""
        if self._warm_left < 0:
            self.start_process()
        return self._warm_left

    @property
    def warming(self) -> bool:
        """Whether the next call is a warm-up call of this process."""
        return self.warm_calls_left > 0

    def record_call(self, seconds: float, steps: int, epoch: int) -> None:
        warm = self.warming
        self.call_times.append(float(seconds))
        self.call_steps.append(int(steps))
        self.call_warm.append(warm)
        self.call_epoch.append(int(epoch))
        self._warm_left = max(0, self._warm_left - 1)

    def record_step(self, seconds: float, epoch: int) -> None:
        """A call of one step."""
        self.record_call(seconds, 1, epoch)

    def record_epoch(self, epoch: int, seconds: float, wall_seconds: float | None = None) -> None:
        """`seconds` from the epoch's first call's start to its last call's end; `wall_seconds`
        the epoch's whole wall time (setup before the first call included)."""
        self.epoch_times[epoch] = float(seconds)
        self.epoch_walls[epoch] = float(seconds if wall_seconds is None else wall_seconds)

    def summary(self) -> ClockSummary:
        times = np.asarray(self.call_times, dtype=np.float64)
        steps = np.asarray(self.call_steps, dtype=np.int64)
        warm = np.asarray(self.call_warm, dtype=bool)
        epochs = np.asarray(self.call_epoch, dtype=np.int64)
        timed = ~warm & (steps > 0)
        per_step = times[timed] / steps[timed]
        nan = float("nan")
        median = weighted_percentile(per_step, steps[timed], 50)
        # An epoch that held warm-up calls counts their steps as median steps.
        epoch_times = [span - times[warm & (epochs == e)].sum()
                       + steps[warm & (epochs == e)].sum() * median
                       for e, span in self.epoch_times.items()]
        timed_steps = int(steps[timed].sum())
        last_epoch = max(self.epoch_walls) if self.epoch_walls else None
        return ClockSummary(
            images_per_sec=float(self.images_per_step * timed_steps / times[timed].sum())
            if timed_steps else nan,
            step_time_p50_ms=1e3 * median,
            step_time_p95_ms=1e3 * weighted_percentile(per_step, steps[timed], 95),
            epoch_time_s=float(np.mean(epoch_times)) if epoch_times else nan,
            compile_time_s=float(times[warm].sum()),
            train_time_s=float(times.sum()),
            steps=int(steps.sum()),
            warmup_steps=int(steps[warm].sum()),
            epoch_wall_s=self.epoch_walls[last_epoch] if last_epoch is not None else nan,
            wall_time_s=float(sum(self.epoch_walls.values())) if self.epoch_walls else nan,
            calls=int(times.size),
        )

    def state(self) -> dict[str, np.ndarray]:
        epochs = sorted(self.epoch_walls)
        return {"clock/call_times": np.asarray(self.call_times, dtype=np.float64),
                "clock/call_steps": np.asarray(self.call_steps, dtype=np.int64),
                "clock/call_warm": np.asarray(self.call_warm, dtype=bool),
                "clock/call_epoch": np.asarray(self.call_epoch, dtype=np.int64),
                "clock/epochs": np.asarray(epochs, dtype=np.int64),
                "clock/epoch_times": np.asarray([self.epoch_times[e] for e in epochs],
                                                dtype=np.float64),
                "clock/epoch_walls": np.asarray([self.epoch_walls[e] for e in epochs],
                                                dtype=np.float64)}

    def load_state(self, state: dict[str, np.ndarray]) -> None:
        """Restore from `state()`, or from a checkpoint of the one-step-per-call clock."""
        if "clock/call_times" not in state:  # written before calls: every call was one step
            state = {"clock/call_times": state["clock/step_times"],
                     "clock/call_steps": np.ones(len(state["clock/step_times"]), np.int64),
                     "clock/call_warm": state["clock/step_warm"],
                     "clock/call_epoch": state["clock/step_epoch"],
                     "clock/epochs": state["clock/epochs"],
                     "clock/epoch_times": state["clock/epoch_times"],
                     "clock/epoch_walls": state["clock/epoch_times"]}
        self.call_times = [float(x) for x in state["clock/call_times"]]
        self.call_steps = [int(x) for x in state["clock/call_steps"]]
        self.call_warm = [bool(x) for x in state["clock/call_warm"]]
        self.call_epoch = [int(x) for x in state["clock/call_epoch"]]
        epochs = [int(e) for e in state["clock/epochs"]]
        self.epoch_times = dict(zip(epochs, map(float, state["clock/epoch_times"]), strict=True))
        self.epoch_walls = dict(zip(epochs, map(float, state["clock/epoch_walls"]), strict=True))
