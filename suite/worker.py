"""run_trial: data -> model -> train loop -> milestone rows in the results store.

Every launcher (local, Ray, Slurm) ends up here, once per rank. Only rank 0
writes. A trial that raises is recorded `failed` with its error and the caller
carries on; a trial whose loss turns non-finite is recorded `diverged`.
"""

from __future__ import annotations

import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from suite import schema
from suite.data import ImageData, load_dataset
from suite.environment import describe_environment, utc_timestamp
from suite.events import (
    EPOCH_END,
    TRIAL_END,
    TRIAL_SKIP,
    TRIAL_START,
    Event,
    EventSink,
    ignore_event,
)
from suite.results import (
    CHECKPOINT_FILE,
    CONFIG_FILE,
    RESULT_FILE,
    SAMPLES_DIR,
    is_finished,
    read_rows,
    trial_dir,
    trial_state,
    write_json_atomic,
    write_rows,
)
from suite.samples import eval_noise_and_labels, save_grid_png
from suite.spec import Trial

ERROR_FILE = "error.txt"


@dataclass(frozen=True)
class RunContext:
    """Where a trial reads data from and writes results to."""

    out: Path
    data_dir: str | None = None
    inception_weights: str | None = None  # --inception-weights: PATH, "random", or None


@dataclass(frozen=True)
class TrialResult:
    trial_id: str
    status: str  # ok | diverged | failed
    skipped: bool = False
    error: str = ""
    weights_digest: str = ""


def trial_label(trial: Trial) -> str:
    return (f"{trial.model}/{trial.upsampling} z={trial.latent_dim} seed={trial.seed}"
            + (f" w={trial.workers}" if trial.workers > 1 else ""))


def cap_training_set(data: ImageData, cap: int | None) -> tuple[np.ndarray, np.ndarray | None]:
    """The first `cap` training images (the split is already in a fixed random order)."""
    if cap is None:
        return data.x_train, data.y_train
    return data.x_train[:cap], None if data.y_train is None else data.y_train[:cap]


def config_columns(trial: Trial) -> dict[str, Any]:
    return {
        schema.SCHEMA_VERSION_COL: schema.SCHEMA_VERSION,
        schema.SWEEP: trial.sweep,
        schema.TRIAL_ID: trial.trial_id,
        schema.TRIAL_INDEX: trial.index,
        schema.DATASET: trial.dataset,
        schema.MODEL: trial.model,
        schema.UPSAMPLING: trial.upsampling,
        schema.KERNEL_SIZE: trial.kernel_size,
        schema.LATENT_DIM: trial.latent_dim,
        schema.EPOCHS: trial.epochs,
        schema.SEED: trial.seed,
        schema.BATCH_SIZE: trial.batch_size,
        schema.GLOBAL_BATCH_SIZE: trial.global_batch_size,
        schema.WORKERS: trial.workers,
        schema.LR: trial.lr,
        schema.LR_SCALING: trial.lr_scaling,
        schema.LR_EFFECTIVE: trial.lr_effective,
        schema.MAX_TRAIN_IMAGES: trial.max_train_images,
        schema.CONFIG_JSON: trial.to_json(),
    }


def run_trial(trial: Trial, ctx: RunContext, replicas=None,
              on_event: EventSink = ignore_event) -> TrialResult:
    """Run one trial to completion (resuming if a checkpoint exists); never raises
    for a failure of the trial itself, which is recorded as a `failed` row."""
    from suite.training.replicas import SingleReplica

    replicas = replicas or SingleReplica()
    is_writer = replicas.info.rank == 0
    skipped = skip_if_finished(trial, ctx, on_event)
    if skipped:
        return skipped
    directory = trial_dir(ctx.out, trial.sweep, trial.trial_id)
    label = trial_label(trial)
    if is_writer:
        (directory / SAMPLES_DIR).mkdir(parents=True, exist_ok=True)
        write_json_atomic(directory / CONFIG_FILE, {**trial.config(), "trial_id": trial.trial_id,
                                                    "sweep": trial.sweep, "index": trial.index})
    # Rows of milestones already written survive; failed rows of earlier attempts do not.
    rows: dict[int, dict[str, Any]] = {
        r[schema.EPOCH]: r for r in read_rows(directory / RESULT_FILE)
        if r[schema.STATUS] == schema.STATUS_OK}
    base = config_columns(trial)
    on_event(Event(TRIAL_START, trial.trial_id, label, epochs=trial.epochs))
    progress = {"epoch": 0, "protocol": {}}

    def write(row: dict[str, Any]) -> None:
        rows[row[schema.EPOCH]] = row
        if is_writer:
            write_rows(directory / RESULT_FILE, [rows[e] for e in sorted(rows)])

    digest = ""
    try:
        status, error, digest = _train_trial(trial, ctx, replicas, directory, base, write,
                                             progress, on_event, label)
    except Exception as exc:  # recorded, and the sweep goes on
        status, error = schema.STATUS_FAILED, f"{type(exc).__name__}: {exc}"
        if is_writer:
            record_failure(trial, ctx, error, traceback.format_exc(), progress["protocol"],
                           epoch_reached=progress["epoch"])
    on_event(Event(TRIAL_END, trial.trial_id, label, epoch=progress["epoch"],
                   epochs=trial.epochs, status=status, message=error))
    return TrialResult(trial.trial_id, status, error=error, weights_digest=digest)


def stored_state(trial: Trial, ctx: RunContext) -> str:
    """The trial's state according to the results store (see results.trial_state)."""
    return trial_state(trial_dir(ctx.out, trial.sweep, trial.trial_id), trial.milestones)


def skip_if_finished(trial: Trial, ctx: RunContext, on_event: EventSink) -> TrialResult | None:
    """A skipped result (and event) for a trial already finished, else None."""
    state = stored_state(trial, ctx)
    if not is_finished(state):
        return None
    on_event(Event(TRIAL_SKIP, trial.trial_id, trial_label(trial), status=state))
    return TrialResult(trial.trial_id, state, skipped=True)


def outcome_from_store(trial: Trial, ctx: RunContext, error_if_unfinished: str,
                       detail: str = "") -> TrialResult:
    """The outcome of a trial that ran in other processes (ranks, Ray, Slurm).

    A trial that ended unfinished without a `failed` row (its processes died)
    is recorded `failed` here, with `error_if_unfinished`.
    """
    state = stored_state(trial, ctx)
    if is_finished(state):
        return TrialResult(trial.trial_id, state)
    directory = trial_dir(ctx.out, trial.sweep, trial.trial_id)
    failed = [r for r in read_rows(directory / RESULT_FILE)
              if r[schema.STATUS] == schema.STATUS_FAILED]
    if failed:
        return TrialResult(trial.trial_id, schema.STATUS_FAILED, error=failed[-1][schema.ERROR])
    record_failure(trial, ctx, error_if_unfinished, detail)
    return TrialResult(trial.trial_id, schema.STATUS_FAILED, error=error_if_unfinished)


def record_failure(trial: Trial, ctx: RunContext, error: str, detail: str = "",
                   extra: dict[str, Any] | None = None, epoch_reached: int = 0) -> None:
    """Append a `failed` row after the trial's ok rows (earlier failed rows are
    dropped), and keep the full traceback or log excerpt in error.txt."""
    directory = trial_dir(ctx.out, trial.sweep, trial.trial_id)
    directory.mkdir(parents=True, exist_ok=True)
    rows = [r for r in read_rows(directory / RESULT_FILE) if r[schema.STATUS] == schema.STATUS_OK]
    last = max((r[schema.EPOCH] for r in rows), default=epoch_reached)
    (directory / ERROR_FILE).write_text(detail or error)
    failed = {**config_columns(trial), **(extra or {}), **describe_environment(),
              schema.EPOCH: max(last, epoch_reached) + 1, schema.STATUS: schema.STATUS_FAILED,
              schema.ERROR: error, schema.TIMESTAMP: utc_timestamp()}
    write_rows(directory / RESULT_FILE, [*rows, failed])


def _train_trial(trial: Trial, ctx: RunContext, replicas, directory: Path,
                 base: dict[str, Any], write, progress: dict, on_event: EventSink,
                 label: str) -> tuple[str, str, str]:
    import keras

    from suite.metrics.evaluate import BackboneSettings, evaluate_milestone
    from suite.models import MODELS, is_conditional
    from suite.models.networks import NetSpec
    from suite.training.loop import EpochReport, TrainConfig, train

    keras.backend.clear_session()
    keras.utils.set_random_seed(trial.seed)
    data = load_dataset(trial.dataset, ctx.data_dir)
    x, y = cap_training_set(data, trial.max_train_images)
    num_classes = data.num_classes if is_conditional(trial.model) else 0
    net = NetSpec(data.image_shape, trial.latent_dim, num_classes, trial.upsampling,
                  trial.kernel_size)
    model = MODELS.get(trial.model)(net, trial.lr_effective, trial.seed)
    params = model.param_counts()
    noise, labels, (grid_rows, grid_cols) = eval_noise_and_labels(
        trial.latent_dim, num_classes, trial.seed)
    protocol = {
        schema.TRAIN_SPLIT: data.train_split, schema.EVAL_SPLIT: data.eval_split,
        schema.N_TRAIN: int(len(x)), schema.N_EVAL: int(len(data.x_eval)),
        schema.IMAGE_SHAPE: "x".join(str(d) for d in data.image_shape),
        schema.PARAMS_TOTAL: sum(params.values()),
        **{f"params_{name}": n for name, n in params.items()},
    }
    progress["protocol"] = protocol
    env = describe_environment()

    def on_epoch(report: EpochReport) -> None:
        progress["epoch"] = report.epoch
        on_event(Event(EPOCH_END, trial.trial_id, label, epoch=report.epoch,
                       epochs=trial.epochs, losses=report.losses))

    def on_milestone(report: EpochReport) -> None:
        started = time.perf_counter()
        png = f"{SAMPLES_DIR}/epoch_{report.epoch:04d}.png"
        quality: dict[str, Any] = {}
        if replicas.info.rank == 0:
            images = np.asarray(model.generate(noise, labels))
            save_grid_png(images, grid_rows, grid_cols, directory / png)
            quality = evaluate_milestone(model, data, trial,
                                         BackboneSettings(ctx.inception_weights), report.epoch)
        write({**base, **protocol, **env, **_clock_columns(report, trial),
               **report.losses, **quality, schema.EPOCH: report.epoch,
               schema.STATUS: schema.STATUS_OK,
               schema.SAMPLES_PNG: png, schema.EVAL_TIME_S: time.perf_counter() - started,
               schema.TIMESTAMP: utc_timestamp()})

    config = TrainConfig(epochs=trial.epochs, milestones=trial.milestones,
                         batch_size=trial.batch_size, seed=trial.seed)
    outcome = train(model, x, y, config, checkpoint_path=directory / CHECKPOINT_FILE,
                    replicas=replicas, on_epoch=on_epoch, on_milestone=on_milestone)
    if outcome.status == schema.STATUS_DIVERGED:
        write({**base, **protocol, **env, schema.EPOCH: outcome.epoch,
               schema.STATUS: outcome.status, schema.ERROR: outcome.error,
               schema.TIMESTAMP: utc_timestamp()})
    return outcome.status, outcome.error, outcome.weights_digest


def _clock_columns(report, trial: Trial) -> dict[str, Any]:
    c = report.clock
    return {
        schema.IMAGES_PER_SEC: c.images_per_sec,
        schema.IMAGES_PER_SEC_PER_WORKER: c.images_per_sec / trial.workers,
        schema.STEP_TIME_P50_MS: c.step_time_p50_ms,
        schema.STEP_TIME_P95_MS: c.step_time_p95_ms,
        schema.EPOCH_TIME_S: c.epoch_time_s,
        schema.COMPILE_TIME_S: c.compile_time_s,
        schema.TRAIN_TIME_S: c.train_time_s,
        schema.STEPS: c.steps,
        schema.WARMUP_STEPS: c.warmup_steps,
    }
