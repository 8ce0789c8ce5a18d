"""The columns of a result row, built from a trial, its data, losses and clock.

Every row carries its full trial config (so analysis never joins back to the sweep),
the protocol it trained and evaluated under, and the environment of the process
that trained it; column names come from suite.store.schema alone.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from suite.data import ImageData
from suite.store import schema
from suite.sweep.spec import Trial


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
        schema.STEPS_PER_CALL_SETTING: str(trial.steps_per_call),
        schema.PRECISION: trial.precision,
        schema.DEPTH: trial.depth,
        schema.WIDTH: trial.width,
        schema.BETA1: trial.beta1,
        schema.JIT_COMPILE: trial.jit_compile,
        schema.CONFIG_JSON: trial.to_json(),
    }


def trial_config_record(trial: Trial) -> dict[str, Any]:
    """config.json: the resolved trial plus its id, sweep and index (read by `status`)."""
    return {**trial.config(), "trial_id": trial.trial_id, "sweep": trial.sweep,
            "index": trial.index}


def protocol_columns(data: ImageData, x: np.ndarray, params: dict[str, int]) -> dict[str, Any]:
    """What the trial trained on and how big its networks are."""
    return {
        schema.TRAIN_SPLIT: data.train_split, schema.EVAL_SPLIT: data.eval_split,
        schema.N_TRAIN: int(len(x)), schema.N_EVAL: int(len(data.x_eval)),
        schema.IMAGE_SHAPE: "x".join(str(d) for d in data.image_shape),
        schema.PARAMS_TOTAL: sum(params.values()),
        **{schema.PARAMS_COLUMNS[name]: n for name, n in params.items()},
    }


def loss_columns(losses: dict[str, float]) -> dict[str, float]:
    """A model's losses are schema columns; an unknown name is a programming error."""
    unknown = set(losses) - set(schema.LOSS_COLUMNS)
    if unknown:
        raise KeyError(f"losses not in suite.store.schema.LOSS_COLUMNS: {sorted(unknown)}")
    return dict(losses)


def clock_columns(report, trial: Trial) -> dict[str, Any]:
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
        schema.STEPS_PER_CALL: report.steps_per_call,
        schema.EPOCH_WALL_S: c.epoch_wall_s,
        schema.WALL_TIME_S: c.wall_time_s,
    }
