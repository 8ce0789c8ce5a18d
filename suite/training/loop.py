"""The one trainer, for every model family.

Training runs in compiled calls of K steps (suite/training/device_loop.py):
the device sums the losses, the host reads them once per call, and a
non-finite loss stops the trial as diverged, naming the call's steps. The
first calls of every process run one step each (tracing is timed apart as
compile time); with `steps_per_call: auto`, K is chosen after them from the
measured step time and per-call overhead (suite/training/calls.py), and all
replicas use the largest choice. After every epoch rank 0 writes a checkpoint;
at every milestone the caller's `on_milestone` runs outside the throughput
clock.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from suite.models.base import GenerativeModel
from suite.store.schema import STATUS_DIVERGED, STATUS_OK
from suite.training.batch_rule import batch_fill_problem
from suite.training.batches import EpochBatches
from suite.training.calls import (
    AUTO,
    call_sizes,
    choose_steps_per_call,
    steps_per_call_value,
)
from suite.training.checkpoint import load_checkpoint, save_checkpoint
from suite.training.clock import ClockSummary, ThroughputClock
from suite.training.device_loop import CallResult, DeviceLoop
from suite.training.replicas import Replicas, SingleReplica


@dataclass(frozen=True)
class TrainConfig:
    epochs: int
    milestones: tuple[int, ...]
    batch_size: int  # per replica
    seed: int
    warmup_steps: int = 2  # one-step calls at the start of every process (compile time)
    steps_per_call: int | str = AUTO  # K, or "auto"
    # time.perf_counter() when this process took up the trial: the first epoch's wall time
    # (epoch_wall_s) counts from here, so data and model setup cannot hide. None: train().
    started_at: float | None = None
    # Checkpoint only after milestone epochs (policy last-milestone-only): fewer writes,
    # and a resumed trial re-trains from its last milestone.
    checkpoint_milestones_only: bool = False
    jit_compile: bool = False  # XLA-compile the step (DeviceLoop)


@dataclass(frozen=True)
class EpochReport:
    epoch: int
    losses: dict[str, float]  # means over the epoch's steps (replica-averaged)
    clock: ClockSummary
    steps_per_call: int = 1  # K of this process's training calls


@dataclass(frozen=True)
class TrainOutcome:
    status: str  # ok | diverged
    epoch: int  # last epoch completed (or the one that diverged)
    resumed_from: int  # 0 when the run started fresh
    error: str = ""
    weights_digest: str = ""  # of the trainable weights: equal on every rank when in sync
    # diverged: the steps (1-based, within `epoch`) of the call whose loss went non-finite
    nonfinite_steps: tuple[int, int] | None = None
    steps_per_call: int = 1


EpochCallback = Callable[[EpochReport], None]


def train(model: GenerativeModel, x: np.ndarray, y: np.ndarray | None, config: TrainConfig,
          checkpoint_path: Path | None = None, replicas: Replicas | None = None,
          on_epoch: EpochCallback | None = None,
          on_milestone: EpochCallback | None = None) -> TrainOutcome:
    """Train to `config.epochs`, resuming from `checkpoint_path` when it exists."""
    epoch_started = time.perf_counter() if config.started_at is None else config.started_at
    replicas = replicas or SingleReplica()
    info = replicas.info
    batches = EpochBatches(x, y, config.batch_size, config.seed, model.pixel_range,
                           rank=info.rank, num_ranks=info.size)
    # The spec's rule (n >= workers x batch_size) is exactly steps_per_epoch >= 1.
    problem = batch_fill_problem(len(x), config.batch_size * info.size)
    if problem:
        raise ValueError(f"{problem} (batch_size {config.batch_size} on each of "
                         f"{info.size} workers)")
    clock = ThroughputClock(images_per_step=config.batch_size * info.size,
                            warmup_steps=config.warmup_steps)
    start_epoch = 0
    if checkpoint_path is not None and checkpoint_path.exists():
        start_epoch, state = load_checkpoint(checkpoint_path, model)
        clock.load_state(state)
    else:
        model.build_optimizers()
    replicas.broadcast_variables(_all_variables(model))
    _decorrelate_random_streams(model, info.rank)
    clock.start_process()
    device = DeviceLoop(model, replicas, jit_compile=config.jit_compile)
    fixed = steps_per_call_value(config.steps_per_call)
    k, choosing = fixed or 1, fixed is None
    steps = batches.steps_per_epoch  # the same on every rank: shards are cut to it

    for epoch in range(start_epoch + 1, config.epochs + 1):
        iterator = iter(batches.for_epoch(epoch))
        sums = dict.fromkeys(model.loss_names, 0.0)
        done, plan = 0, call_sizes(steps, k, clock.warm_calls_left)
        first_call = previous = time.perf_counter()
        while plan:
            n = plan.pop(0)
            result = device.run(iterator, n)
            now = time.perf_counter()
            clock.record_call(now - previous, result.steps, epoch)
            previous = now
            if not result.finite:
                return _diverged(result, epoch, done, n, start_epoch, k)
            for name, value in result.sums.items():
                sums[name] += value
            done += n
            if choosing and not clock.warming:
                k, choosing = _agree(_auto_steps_per_call(device, iterator, clock), replicas), False
                plan = call_sizes(steps - done, k)
                previous = time.perf_counter()  # the measurement is not training time
        now = time.perf_counter()
        clock.record_epoch(epoch, now - first_call, now - epoch_started)
        report = EpochReport(epoch, {name: v / steps for name, v in sums.items()},
                             _slowest(clock.summary(), replicas), k)
        if on_epoch:
            on_epoch(report)
        if epoch in config.milestones and on_milestone:
            on_milestone(report)
        epoch_started = time.perf_counter()  # the next epoch's wall includes this checkpoint
        # After the milestone row: a crash in between re-trains the epoch and
        # rewrites its row, so no row is lost or duplicated.
        wanted = not config.checkpoint_milestones_only or epoch in config.milestones
        if checkpoint_path is not None and info.rank == 0 and wanted:
            save_checkpoint(checkpoint_path, model, epoch, clock.state())
        replicas.barrier()
    return TrainOutcome(STATUS_OK, config.epochs, start_epoch,
                        weights_digest=digest_weights(model.trainable_variables),
                        steps_per_call=k)


def _diverged(result: CallResult, epoch: int, done: int, n: int, start_epoch: int,
              k: int) -> TrainOutcome:
    step = done + result.steps
    bad = ", ".join(f"{name}={v}" for name, v in result.last.items())
    window = f"step {step}" + ("" if n == 1 else f" (call of steps {done + 1}-{done + n})")
    return TrainOutcome(STATUS_DIVERGED, epoch, start_epoch,
                        f"non-finite loss at epoch {epoch}, {window}: {bad}",
                        nonfinite_steps=(done + 1, done + n), steps_per_call=k)


def _auto_steps_per_call(device: DeviceLoop, iterator, clock: ThroughputClock) -> int:
    """K from the last warm-up call (one step, traced already) and an empty call's time."""
    overhead = device.measure_overhead(iterator)
    step = clock.call_times[-1] / max(1, clock.call_steps[-1]) - overhead
    return choose_steps_per_call(step, overhead)


def _agree(k: int, replicas: Replicas) -> int:
    """Every replica runs the same K (the largest choice), so rows report one K."""
    return k if replicas.info.size == 1 else int(replicas.allreduce_max(float(k)))


def digest_weights(variables: list) -> str:
    """A short hash of variable values: ranks in sync print the same digest."""
    h = hashlib.sha256()
    for v in variables:
        h.update(np.ascontiguousarray(np.asarray(v)).tobytes())
    return h.hexdigest()[:16]


def _decorrelate_random_streams(model: GenerativeModel, rank: int) -> None:
    """Give each rank its own noise and dropout streams.

    The broadcast copies rank 0's SeedGenerator states too; without this every
    rank would draw the same latent noise, and N workers would train like one.
    """
    if rank == 0:
        return
    for v in model.non_trainable_variables:
        if v.path.endswith("seed_generator_state"):
            state = np.asarray(v)
            state[0] = (int(state[0]) + 7919 * rank) % (2**31 - 1)
            v.assign(state)


def _all_variables(model: GenerativeModel) -> list:
    return list(model.variables) + [v for opt in model.optimizers for v in opt.variables]


# ClockSummary fields that are the slowest rank's (max) in a multi-rank summary.
_SLOWEST_FIELDS = ("step_time_p50_ms", "step_time_p95_ms", "epoch_time_s", "compile_time_s",
                   "train_time_s", "epoch_wall_s", "wall_time_s")


def _slowest(summary: ClockSummary, replicas: Replicas) -> ClockSummary:
    """Global throughput is set by the slowest rank: its rate and times, in ONE collective
    (a max over a vector; the rate enters negated, so its max is the slowest rate)."""
    if replicas.info.size == 1:
        return summary
    values = [-summary.images_per_sec] + [getattr(summary, f) for f in _SLOWEST_FIELDS]
    reduced = replicas.allreduce_max_many(values)
    return replace(summary, images_per_sec=-reduced[0],
                   **dict(zip(_SLOWEST_FIELDS, reduced[1:], strict=True)))
