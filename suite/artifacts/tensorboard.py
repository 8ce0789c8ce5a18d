"""TensorBoard event files per trial: the only module that writes `tf.summary`.

Each trial writes to `<trial dir>/tensorboard/<label>/`, so
`tensorboard --logdir results/<sweep>` lists every trial as a run named by its
trial id and label. The step is the epoch: losses at every epoch, every metric
and the throughput at every milestone, and the sample grid as an image. Rank 0
alone writes (the worker decides). Results stay in result.parquet; these files
are for looking, and analysis never reads them.

Summaries go through the core op `tf.summary.write` with the plugin metadata
TensorBoard's own summary functions attach (scalars, images as [width, height,
PNG], text): the files are the same, and these calls never need the `tensorboard`
package (TensorFlow 2.21 no longer installs it). Each run is also one session of
the sweep's HParams experiment (its axis values at the start, its status at the
end), whose protos do come from the `tensorboard` package (suite.artifacts.hparams).
A summary that cannot be written costs a warning, never the trial.
"""

from __future__ import annotations

import json
import math
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from suite.artifacts.hparams import session_end_summary, session_start_summary
from suite.artifacts.samples import images_to_grid
from suite.store import schema

TENSORBOARD_DIR = "tensorboard"

# Milestone columns shown under "throughput/"; every other number of a row's metric
# part goes under "quality/".
THROUGHPUT_COLUMNS = (
    schema.IMAGES_PER_SEC, schema.IMAGES_PER_SEC_PER_WORKER, schema.STEP_TIME_P50_MS,
    schema.STEP_TIME_P95_MS, schema.EPOCH_TIME_S, schema.COMPILE_TIME_S, schema.TRAIN_TIME_S,
    schema.EPOCH_WALL_S, schema.WALL_TIME_S, schema.EVAL_TIME_S, schema.STEPS,
    schema.WARMUP_STEPS, schema.STEPS_PER_CALL,
)


def run_directory(trial_directory: Path, label: str) -> Path:
    """Where a trial's event files go: a readable run name under its trial directory."""
    name = re.sub(r"[^A-Za-z0-9_.=-]+", "_", label).strip("_") or "run"
    return Path(trial_directory) / TENSORBOARD_DIR / name


class TrialSummaries:
    """One trial's event-file writer; flushes after every write, so a killed trial keeps
    what it wrote. Use as a context manager, or call `close()`."""

    def __init__(self, trial_directory: Path, label: str, config: Mapping[str, Any]) -> None:
        import tensorflow as tf

        self._broken = False
        self._tf = tf
        self.directory = run_directory(trial_directory, label)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._writer = tf.summary.create_file_writer(str(self.directory))
        text = "```\n" + json.dumps(dict(config), indent=1, default=str) + "\n```"
        self._write("config", tf.constant(text), 0, "text")
        # The HParams dashboard's row of this trial (suite.artifacts.hparams).
        self._write_raw(session_start_summary(config, str(config.get(schema.TRIAL_ID, label))))
        self._writer.flush()

    def write_epoch(self, epoch: int, losses: Mapping[str, float]) -> None:
        """The epoch's mean losses, as `loss/<name>`."""
        self._scalars("loss", losses, epoch)
        self._writer.flush()

    def write_milestone(self, epoch: int, metrics: Mapping[str, Any],
                        images: np.ndarray | None = None,
                        grid_shape: tuple[int, int] | None = None) -> None:
        """Every numeric metric of a milestone row (`throughput/...` for the clock's,
        `quality/...` for the rest) and the sample grid of `images` ((N, H, W, C) in [0, 1])."""
        throughput = {k: v for k, v in metrics.items() if k in THROUGHPUT_COLUMNS}
        quality = {k: v for k, v in metrics.items() if k not in THROUGHPUT_COLUMNS}
        self._scalars("throughput", throughput, epoch)
        self._scalars("quality", quality, epoch)
        if images is not None and grid_shape is not None:
            tf = self._tf
            grid = images_to_grid(np.asarray(images, np.float32), *grid_shape)
            grid = grid[..., None] if grid.ndim == 2 else grid
            png = tf.io.encode_png(grid)
            dims = [str(grid.shape[1]), str(grid.shape[0])]  # the images plugin's layout
            self._write("samples", tf.stack([tf.constant(dims[0]), tf.constant(dims[1]), png]),
                        epoch, "images")
        self._writer.flush()

    def close(self, status: str = schema.STATUS_FAILED) -> None:
        """End the trial's HParams session with its status (ok, diverged, failed)."""
        self._guarded(lambda: self._tf.summary.experimental.write_raw_pb(
            session_end_summary(status), step=0))  # built inside the guard: never fatal
        self._writer.close()

    def __enter__(self) -> TrialSummaries:
        return self

    def __exit__(self, kind: object, *exc: object) -> None:
        self.close(schema.STATUS_FAILED if kind else schema.STATUS_OK)

    def _scalars(self, group: str, values: Mapping[str, Any], step: int) -> None:
        for name, value in values.items():
            number = _number(value)
            if number is not None:
                self._write(f"{group}/{name}", self._tf.constant(number, self._tf.float32),
                            step, "scalars")

    def _write(self, tag: str, tensor, step: int, plugin: str) -> None:
        self._guarded(lambda: self._tf.summary.write(tag, tensor, step=step,
                                                     metadata=_metadata(plugin)))

    def _write_raw(self, summary: bytes) -> None:
        """A serialized Summary proto as is (the HParams plugin's), at step 0."""
        self._guarded(lambda: self._tf.summary.experimental.write_raw_pb(summary, step=0))

    def _guarded(self, write) -> None:
        if self._broken:
            return
        try:
            with self._writer.as_default():
                write()
        except Exception as exc:  # pictures for people: never worth a trial
            self._broken = True
            print(f"genbench: TensorBoard summaries of {self.directory} stopped: "
                  f"{type(exc).__name__}: {str(exc)[:120]}", file=sys.stderr)


def _metadata(plugin: str):
    """The SummaryMetadata TensorBoard's own summary functions write for `plugin`."""
    from tensorflow.core.framework import summary_pb2

    data_class = {"scalars": summary_pb2.DATA_CLASS_SCALAR,
                  "images": summary_pb2.DATA_CLASS_BLOB_SEQUENCE,
                  "text": summary_pb2.DATA_CLASS_TENSOR}[plugin]
    return summary_pb2.SummaryMetadata(
        plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name=plugin),
        data_class=data_class)


def _number(value: Any) -> float | None:
    """A finite float, or None for what is not a number (strings, NaN, None, bools)."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.number):
        return None
    value = float(value)
    return value if math.isfinite(value) else None
