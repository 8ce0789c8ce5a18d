"""The one trainer, for every model family.

Each step is the family's `train_batch`, compiled once with tf.function; the
losses come back averaged across replicas, so every rank takes the same
divergence decision. After every epoch rank 0 writes a checkpoint; at every
milestone the caller's `on_milestone` runs outside the throughput clock.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tensorflow as tf

from suite.models.base import GenerativeModel
from suite.schema import STATUS_DIVERGED, STATUS_OK
from suite.spec import batch_fill_problem
from suite.training.batches import EpochBatches
from suite.training.checkpoint import load_checkpoint, save_checkpoint
from suite.training.clock import ClockSummary, ThroughputClock
from suite.training.replicas import Replicas, SingleReplica


@dataclass(frozen=True)
class TrainConfig:
    epochs: int
    milestones: tuple[int, ...]
    batch_size: int  # per replica
    seed: int
    warmup_steps: int = 2


@dataclass(frozen=True)
class EpochReport:
    epoch: int
    losses: dict[str, float]  # means over the epoch's steps (replica-averaged)
    clock: ClockSummary


@dataclass(frozen=True)
class TrainOutcome:
    status: str  # ok | diverged
    epoch: int  # last epoch completed (or the one that diverged)
    resumed_from: int  # 0 when the run started fresh
    error: str = ""
    weights_digest: str = ""  # of the trainable weights: equal on every rank when in sync


EpochCallback = Callable[[EpochReport], None]


def compile_step(model: GenerativeModel, replicas: Replicas) -> Callable:
    """`train_batch` as one tf.function whose losses are averaged across replicas."""

    def step(images, labels):
        losses = model.train_batch(images, labels, replicas.average_gradients)
        names = list(losses)
        averaged = replicas.average_gradients([losses[n] for n in names])
        return dict(zip(names, averaged, strict=True))

    return tf.function(step)


def train(model: GenerativeModel, x: np.ndarray, y: np.ndarray | None, config: TrainConfig,
          checkpoint_path: Path | None = None, replicas: Replicas | None = None,
          on_epoch: EpochCallback | None = None,
          on_milestone: EpochCallback | None = None) -> TrainOutcome:
    """Train to `config.epochs`, resuming from `checkpoint_path` when it exists."""
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
    step = compile_step(model, replicas)

    for epoch in range(start_epoch + 1, config.epochs + 1):
        sums = dict.fromkeys(model.loss_names, 0.0)
        steps = 0
        epoch_start = previous = time.perf_counter()
        for images, labels in batches.for_epoch(epoch):
            values = {k: float(v) for k, v in step(images, labels).items()}
            now = time.perf_counter()
            clock.record_step(now - previous, epoch)
            previous = now
            if not all(math.isfinite(v) for v in values.values()):
                bad = ", ".join(f"{k}={v}" for k, v in values.items())
                return TrainOutcome(STATUS_DIVERGED, epoch, start_epoch,
                                    f"non-finite loss at epoch {epoch}, step {steps + 1}: {bad}")
            for k, v in values.items():
                sums[k] += v
            steps += 1
        clock.record_epoch(epoch, time.perf_counter() - epoch_start)
        report = EpochReport(epoch, {k: v / steps for k, v in sums.items()},
                             _slowest(clock.summary(), replicas))
        if on_epoch:
            on_epoch(report)
        if epoch in config.milestones and on_milestone:
            on_milestone(report)
        # After the milestone row: a crash in between re-trains the epoch and
        # rewrites its row, so no row is lost or duplicated.
        if checkpoint_path is not None and info.rank == 0:
            save_checkpoint(checkpoint_path, model, epoch, clock.state())
        replicas.barrier()
    return TrainOutcome(STATUS_OK, config.epochs, start_epoch,
                        weights_digest=digest_weights(model.trainable_variables))


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


def _slowest(summary: ClockSummary, replicas: Replicas) -> ClockSummary:
    """Global throughput is set by the slowest rank: take its step times."""
    if replicas.info.size == 1:
        return summary
    p50 = replicas.allreduce_max(summary.step_time_p50_ms)
    slow_rate = -replicas.allreduce_max(-summary.images_per_sec)
    return ClockSummary(
        images_per_sec=slow_rate,
        step_time_p50_ms=p50,
        step_time_p95_ms=replicas.allreduce_max(summary.step_time_p95_ms),
        epoch_time_s=replicas.allreduce_max(summary.epoch_time_s),
        compile_time_s=replicas.allreduce_max(summary.compile_time_s),
        train_time_s=replicas.allreduce_max(summary.train_time_s),
        steps=summary.steps,
        warmup_steps=summary.warmup_steps,
    )
