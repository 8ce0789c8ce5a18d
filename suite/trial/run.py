"""run_trial: data -> model -> train loop -> milestone rows, through the trial's TrialStore.

Every launcher (local, Ray, Slurm, the sbatch template) ends up here, once per
rank. Rank 0 holds the trial's lease while it trains (a second run of the same
sweep skips a trial somebody else is training), repairs damaged store files,
and is the only writer. A trial that raises is recorded `failed` with its
error and the caller carries on; a trial whose loss turns non-finite is
recorded `diverged`; a full disk stops the sweep (DiskFullError).
"""

from __future__ import annotations

import sys
import time
import traceback
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from suite.artifacts.samples import eval_noise_and_labels, save_grid_gif, save_grid_png
from suite.artifacts.tensorboard import TrialSummaries
from suite.common.atomic import DiskFullError, disk_full_error, is_disk_full
from suite.common.events import EPOCH_END, MILESTONE, Event, EventSink, ignore_event
from suite.common.timestamps import utc_timestamp
from suite.data.catalog import ImageData, load_dataset
from suite.machine.description import describe_environment
from suite.store import schema
from suite.store.disk import LAST_MILESTONE_ONLY, apply_checkpoint_policy, directory_bytes
from suite.store.states import STATE_BUSY, is_finished
from suite.store.trial_store import TrialStore
from suite.sweep.spec import Trial
from suite.trial.columns import (
    clock_columns,
    config_columns,
    loss_columns,
    protocol_columns,
    trial_config_record,
)
from suite.trial.context import RunContext, TrialResult, trial_label
from suite.trial.utilisation import measure_utilisation


def headline_metrics(images_per_sec: float, quality: dict[str, Any],
                     usage: dict[str, Any]) -> dict[str, float]:
    """What a progress line shows of a milestone: speed, the first FD, MFU."""
    fds = [k for k in quality if k.startswith("fd_") and not k.endswith(("_floor", "_inf"))]
    figures = {schema.IMAGES_PER_SEC: images_per_sec, schema.MFU: usage.get(schema.MFU)}
    if fds:
        figures[fds[0]] = quality[fds[0]]
    return {k: float(v) for k, v in figures.items() if v is not None}


def cap_training_set(data: ImageData, cap: int | None) -> tuple[np.ndarray, np.ndarray | None]:
    """The first `cap` training images (the split is already in a fixed random order)."""
    if cap is None:
        return data.x_train, data.y_train
    return data.x_train[:cap], None if data.y_train is None else data.y_train[:cap]


def run_trial(trial: Trial, ctx: RunContext, replicas=None,
              on_event: EventSink = ignore_event) -> TrialResult:
    """Run one trial to completion (resuming from its checkpoint); never raises for a
    failure of the trial itself, which is recorded as a `failed` row."""
    from suite.training.replicas import SingleReplica

    replicas = replicas or SingleReplica()
    writer = replicas.info.rank == 0
    store = TrialStore.of(ctx.out, trial)
    lease = store.lease() if writer else None
    state = ""
    if lease is not None:
        if lease.acquire():
            for note in store.repair():  # damaged files are set aside, never fatal
                print(f"genbench: trial {trial.trial_id}: {note}", file=sys.stderr, flush=True)
            state = store.state(trial.milestones)
        else:
            state = STATE_BUSY
    if replicas.info.size > 1:  # every rank learns rank 0's answer (a collective: no race)
        codes = (STATE_BUSY, schema.STATUS_OK, schema.STATUS_DIVERGED)
        code = replicas.allreduce_max(float(codes.index(state) + 1 if state in codes else 0))
        state = codes[int(code) - 1] if code else state
    try:
        if state == STATE_BUSY or is_finished(state):
            return _skipped(trial, store, lease, state)
        return TrialRun(trial, ctx, store, replicas, on_event).execute()
    finally:
        if lease is not None:
            lease.release()


def _skipped(trial: Trial, store: TrialStore, lease, state: str) -> TrialResult:
    if state != STATE_BUSY:
        return TrialResult(trial.trial_id, state, skipped=True)
    holder = lease.live_holder() if lease is not None else None
    who = holder.describe() if holder is not None else "another process"
    return TrialResult(trial.trial_id, STATE_BUSY, skipped=True,
                       error=f"already being trained by {who} (lease {store.directory})")


@dataclass
class TrialRun:
    """One attempt at a trial in this process: what it has written and reached so far."""

    trial: Trial
    ctx: RunContext
    store: TrialStore
    replicas: Any
    on_event: EventSink
    epoch_reached: int = 0
    protocol: dict[str, Any] = field(default_factory=dict)
    environment: dict[str, Any] = field(default_factory=dict)
    rows: dict[int, dict[str, Any]] = field(default_factory=dict)
    started_at: float | None = None

    @property
    def writer(self) -> bool:
        return self.replicas.info.rank == 0

    def execute(self) -> TrialResult:
        trial, store = self.trial, self.store
        digest = ""
        self.started_at = time.perf_counter()  # the first epoch's wall time counts from here
        try:
            self.environment = {**describe_environment(), **placement_columns(self.replicas)}
            if self.writer:
                store.samples_dir.mkdir(parents=True, exist_ok=True)
                store.write_config(trial_config_record(trial))
                store.write_environment(self.environment)
                # Milestones already written survive; failed rows of earlier attempts do not.
                self.rows = store.ok_rows()
            status, error, digest = self.train()
            if self.writer:
                self.settle_disk(status)
        except Exception as exc:  # recorded, and the sweep goes on
            if isinstance(exc, DiskFullError):
                raise
            if is_disk_full(exc):
                raise disk_full_error(store.directory, _oserror(exc)) from None
            status, error = schema.STATUS_FAILED, f"{type(exc).__name__}: {exc}"
            if self.writer:
                detail = "\n".join([*store.notes, traceback.format_exc()])
                store.record_failure({**config_columns(trial), **self.protocol}, error, detail,
                                     self.epoch_reached, environment=self.environment or None)
        return TrialResult(trial.trial_id, status, error=error, weights_digest=digest)

    def write_row(self, row: dict[str, Any]) -> None:
        self.rows[row[schema.EPOCH]] = row
        if self.writer:
            row[schema.TRIAL_BYTES] = directory_bytes(self.store.directory)
            self.store.write_rows([self.rows[e] for e in sorted(self.rows)])

    def settle_disk(self, status: str) -> None:
        """A finished trial: apply its checkpoint policy, then give its last row the
        trial's final bytes on disk."""
        if not is_finished(status):
            return
        apply_checkpoint_policy(self.store, self.trial.checkpoints, status)
        if self.rows:
            last = max(self.rows)
            self.rows[last] = {**self.rows[last],
                               schema.TRIAL_BYTES: directory_bytes(self.store.directory)}
            self.store.write_rows([self.rows[e] for e in sorted(self.rows)])

    def train(self) -> tuple[str, str, str]:
        import keras

        from suite.metrics.backbones.registry import resolve_backbones
        from suite.models import MODELS, is_conditional
        from suite.models.networks import NetSpec
        from suite.training.loop import EpochReport, TrainConfig, train
        from suite.trial.evaluate import evaluate_milestone

        trial, ctx = self.trial, self.ctx
        keras.backend.clear_session()
        keras.utils.set_random_seed(trial.seed)
        data = load_dataset(trial.dataset, ctx.data_dir)
        x, y = cap_training_set(data, trial.max_train_images)
        num_classes = data.num_classes if is_conditional(trial.model) else 0
        net = NetSpec(data.image_shape, trial.latent_dim, num_classes, trial.upsampling,
                      trial.kernel_size, trial.precision, depth=trial.depth,
                      width=trial.width, beta1=trial.beta1)
        model = MODELS.get(trial.model)(net, trial.lr_effective, trial.seed)
        self.protocol = protocol_columns(data, x, model.param_counts())
        base = {**config_columns(trial), **self.protocol, **self.environment}
        noise, labels, (grid_rows, grid_cols) = eval_noise_and_labels(
            trial.latent_dim, num_classes, trial.seed)
        backbones = resolve_backbones(trial.eval.backbones, data, ctx.inception_weights) \
            if self.writer else {}
        utilisation = measure_utilisation(model, backbones, data.image_shape, trial.precision,
                                          trial.workers) if self.writer else None
        summaries = TrialSummaries(self.store.directory, f"{trial.trial_id} {trial_label(trial)}",
                                   {**config_columns(trial), **self.protocol}) \
            if self.writer else None

        def on_epoch(report: EpochReport) -> None:
            self.epoch_reached = report.epoch
            self.on_event(Event(EPOCH_END, trial.trial_id, trial_label(trial), epoch=report.epoch,
                                epochs=trial.epochs, losses=loss_columns(report.losses)))
            if summaries is not None:
                summaries.write_epoch(report.epoch, report.losses)

        def on_milestone(report: EpochReport) -> None:
            started = time.perf_counter()
            png = f"{self.store.samples_dir.name}/epoch_{report.epoch:04d}.png"
            quality: dict[str, Any] = {}
            if self.writer:
                images = np.asarray(model.generate(noise, labels))
                save_grid_png(images, grid_rows, grid_cols, self.store.directory / png)
                save_grid_gif(self.store.samples_dir, report.epoch)  # grids so far, animated
                quality = evaluate_milestone(model, data, trial, backbones, report.epoch)
            eval_time = time.perf_counter() - started
            usage = utilisation.columns(report.clock.images_per_sec) if utilisation else {}
            self.write_row({**base, **clock_columns(report, trial),
                            **loss_columns(report.losses), **quality, **usage,
                            schema.EPOCH: report.epoch, schema.STATUS: schema.STATUS_OK,
                            schema.SAMPLES_PNG: png,
                            schema.EVAL_TIME_S: eval_time,
                            schema.TIMESTAMP: utc_timestamp()})
            self.on_event(Event(MILESTONE, trial.trial_id, trial_label(trial), epoch=report.epoch,
                                epochs=trial.epochs,
                                metrics=headline_metrics(report.clock.images_per_sec, quality,
                                                         usage)))
            if summaries is not None:
                summaries.write_milestone(report.epoch, {**clock_columns(report, trial), **quality,
                                                         schema.EVAL_TIME_S: eval_time,
                                                         schema.MFU: usage.get(schema.MFU)},
                                          images, (grid_rows, grid_cols))

        config = TrainConfig(epochs=trial.epochs, milestones=trial.milestones,
                             batch_size=trial.batch_size, seed=trial.seed,
                             steps_per_call=trial.steps_per_call, started_at=self.started_at,
                             checkpoint_milestones_only=trial.checkpoints == LAST_MILESTONE_ONLY,
                             jit_compile=trial.jit_compile)
        outcome = None
        try:
            outcome = train(model, x, y, config, checkpoint_path=self.store.checkpoint_path,
                            replicas=self.replicas, on_epoch=on_epoch, on_milestone=on_milestone)
        finally:
            if summaries is not None:  # ends the trial's HParams session with its status
                summaries.close(outcome.status if outcome else schema.STATUS_FAILED)
        if outcome.status == schema.STATUS_DIVERGED:
            first, last = outcome.nonfinite_steps or (None, None)
            self.write_row({**base, schema.EPOCH: outcome.epoch, schema.STATUS: outcome.status,
                            schema.ERROR: outcome.error,
                            schema.STEPS_PER_CALL: outcome.steps_per_call,
                            schema.NONFINITE_STEPS_FROM: first, schema.NONFINITE_STEPS_TO: last,
                            schema.TIMESTAMP: utc_timestamp()})
        return outcome.status, outcome.error, outcome.weights_digest


def placement_columns(replicas: Any) -> dict[str, Any]:
    """Where the trial's ranks ran (a collective: every rank calls it at the same point)."""
    hosts = sorted(set(replicas.allgather_hostnames()))
    return {schema.HOSTS: ",".join(hosts), schema.NODES: len(hosts)}


def _oserror(exc: BaseException) -> OSError:
    while exc is not None and not isinstance(exc, OSError):
        exc = exc.__cause__ or exc.__context__
    return exc if isinstance(exc, OSError) else OSError(28, "No space left on device")
