"""TensorBoard's HParams dashboard for a sweep: its experiment and each trial's session.

The experiment (the sweep's axes with their values, and the metric tags the trials
write) is one event file at the top of the sweep directory, so `tensorboard --logdir
<out>/<sweep>` finds it as the run "." beside every trial's run. It is written by the
process that prepares the sweep, before any trial starts, under one fixed name through
a rename: a re-run or a second launcher rewrites the same bytes (or the new sweep's),
never a second experiment. Each trial's run holds its session start (every axis value)
and end (its status), written by the trial itself (suite.artifacts.tensorboard).

Protos only, built with the `tensorboard` package's pure-Python parts: no TensorFlow
here, so the driver that writes the experiment need not import it.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from suite.common.atomic import write_atomic
from suite.store import schema

# Only TensorBoard's reader and the `tfevents` in the name matter; the fixed suffix makes
# the file one per sweep.
EXPERIMENT_FILE = "events.out.tfevents.0.genbench-hparams"

# The trial config columns that are axes of a sweep (in this order in the dashboard).
AXIS_COLUMNS = (
    schema.DATASET, schema.MODEL, schema.UPSAMPLING, schema.LATENT_DIM, schema.KERNEL_SIZE,
    schema.EPOCHS, schema.SEED, schema.BATCH_SIZE, schema.WORKERS, schema.LR,
    schema.LR_SCALING, schema.MAX_TRAIN_IMAGES, schema.STEPS_PER_CALL_SETTING,
    schema.PRECISION, schema.DEPTH, schema.WIDTH, schema.BETA1, schema.JIT_COMPILE,
)
# What a sweep of one trial shows (nothing varies).
DEFAULT_AXES = (schema.MODEL, schema.UPSAMPLING, schema.LATENT_DIM, schema.SEED)
# Session status by the status of a trial's last row. TensorBoard's Status enum has only
# UNKNOWN, SUCCESS, FAILURE and RUNNING: a diverged trial did not finish training, so it
# shows as a failure (its rows still say `diverged`).
SESSION_STATUS = {schema.STATUS_OK: "STATUS_SUCCESS", schema.STATUS_DIVERGED: "STATUS_FAILURE",
                  schema.STATUS_FAILED: "STATUS_FAILURE"}


# The losses each model family writes (`loss/<name>`; GenerativeModel.loss_names) and the
# quality columns worth a dashboard column: every backbone's headline numbers.
FAMILY_LOSSES = {"gan": (schema.LOSS_G, schema.LOSS_D),
                 "vae": (schema.ELBO, schema.LOSS_RECON, schema.LOSS_KL)}
HEADLINE_PREFIXES = ("fd_", "fid_", "kid_", "precision_", "recall_", "density_", "coverage_")
THROUGHPUT_METRICS = (schema.IMAGES_PER_SEC, schema.TRAIN_TIME_S)


def sweep_metrics(families: Iterable[str], backbones: Iterable[str]) -> list[str]:
    """The scalar tags the sweep's trials write that the dashboard shows as metrics: their
    losses, each backbone's headline quality columns, images/s and training time."""
    families, backbones = sorted(set(families)), sorted(set(backbones))
    losses = [f"loss/{name}" for f in families for name in FAMILY_LOSSES.get(f, ())]
    quality = [f"quality/{c}" for b in backbones for c in schema.COLUMN_TYPES
               if c.startswith(HEADLINE_PREFIXES) and c.endswith("_" + b)
               and c[:-len(b) - 1].count("_") == 0]
    return losses + quality + [f"throughput/{c}" for c in THROUGHPUT_METRICS]


def write_sweep_experiment(sweep_directory: Path, configs: Sequence[Mapping[str, Any]],
                           families: Iterable[str], backbones: Iterable[str]) -> Path | None:
    """The sweep's experiment: `configs` (every trial's config columns) give the axes.
    A file for looking at: one that cannot be written costs a warning, not the sweep."""
    try:
        return write_experiment(sweep_directory, sweep_axes(configs),
                                sweep_metrics(families, backbones))
    except (OSError, ImportError) as exc:
        print(f"genbench: no TensorBoard HParams experiment in {sweep_directory}: "
              f"{type(exc).__name__}: {str(exc)[:120]}", file=sys.stderr)
        return None


def sweep_axes(configs: Sequence[Mapping[str, Any]]) -> dict[str, list[Any]]:
    """Axis column -> its sorted distinct values, for the axes that vary across `configs`
    (or DEFAULT_AXES when none does). None (e.g. no image cap) is left out."""
    values = {c: sorted({cfg[c] for cfg in configs if cfg.get(c) is not None}, key=_order)
              for c in AXIS_COLUMNS}
    varying = [c for c in AXIS_COLUMNS if len(values[c]) > 1] or list(DEFAULT_AXES)
    return {c: values[c] for c in varying}


def experiment_event(axes: Mapping[str, Sequence[Any]], metrics: Iterable[str],
                     wall_time: float = 0.0) -> bytes:
    """A serialized Event holding the HParams experiment summary."""
    from tensorboard.plugins.hparams import api_pb2, metadata, plugin_data_pb2

    infos = []
    for name, values in axes.items():
        kind = _data_type(values)
        info = api_pb2.HParamInfo(name=name, type=kind)
        if values:  # a string axis lists its values as strings, whatever they are
            info.domain_discrete.extend(
                [str(v) if kind == api_pb2.DATA_TYPE_STRING else v for v in values])
        infos.append(info)
    experiment = api_pb2.Experiment(
        hparam_infos=infos,
        metric_infos=[api_pb2.MetricInfo(name=api_pb2.MetricName(tag=tag)) for tag in metrics])
    return _event(metadata.EXPERIMENT_TAG,
                  plugin_data_pb2.HParamsPluginData(experiment=experiment), wall_time)


def write_experiment(sweep_directory: Path, axes: Mapping[str, Sequence[Any]],
                     metrics: Iterable[str]) -> Path:
    """The sweep's experiment file; left alone when it already says the same."""
    path = Path(sweep_directory) / EXPERIMENT_FILE
    data = _record(experiment_event(axes, list(metrics)))
    if not (path.is_file() and path.read_bytes() == data):
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, lambda tmp: tmp.write_bytes(data))
    return path


def session_start_summary(config: Mapping[str, Any], group: str) -> bytes:
    """A serialized Summary: a trial's session start, with every axis value it has."""
    from tensorboard.plugins.hparams import metadata, plugin_data_pb2

    start = plugin_data_pb2.SessionStartInfo(group_name=group, start_time_secs=time.time())
    for name in AXIS_COLUMNS:
        if config.get(name) is not None:
            start.hparams[name].CopyFrom(_value(config[name]))
    return _summary(metadata.SESSION_START_INFO_TAG,
                    plugin_data_pb2.HParamsPluginData(session_start_info=start)).SerializeToString()


def session_end_summary(status: str) -> bytes:
    """A serialized Summary: a trial's session end, its status from SESSION_STATUS."""
    from tensorboard.plugins.hparams import api_pb2, metadata, plugin_data_pb2

    end = plugin_data_pb2.SessionEndInfo(
        status=api_pb2.Status.Value(SESSION_STATUS.get(status, "STATUS_FAILURE")),
        end_time_secs=time.time())
    return _summary(metadata.SESSION_END_INFO_TAG,
                    plugin_data_pb2.HParamsPluginData(session_end_info=end)).SerializeToString()


def _summary(tag: str, plugin_data: Any) -> Any:
    from tensorboard.compat.proto import summary_pb2
    from tensorboard.plugins.hparams import metadata

    return summary_pb2.Summary(value=[summary_pb2.Summary.Value(
        tag=tag, metadata=metadata.create_summary_metadata(plugin_data),
        tensor=metadata.NULL_TENSOR)])


def _event(tag: str, plugin_data: Any, wall_time: float) -> bytes:
    from tensorboard.compat.proto import event_pb2

    return event_pb2.Event(wall_time=wall_time, step=0,
                           summary=_summary(tag, plugin_data)).SerializeToString()


def _record(event: bytes) -> bytes:
    """One event file: the version record TensorBoard expects first, then `event`."""
    import io

    from tensorboard.compat.proto import event_pb2
    from tensorboard.summary.writer.record_writer import RecordWriter

    buffer = io.BytesIO()
    writer = RecordWriter(buffer)
    writer.write(event_pb2.Event(wall_time=0.0, file_version="brain.Event:2").SerializeToString())
    writer.write(event)
    return buffer.getvalue()


def _value(value: Any):
    from google.protobuf import struct_pb2

    if isinstance(value, bool):
        return struct_pb2.Value(bool_value=value)
    if isinstance(value, int | float):
        return struct_pb2.Value(number_value=float(value))
    return struct_pb2.Value(string_value=str(value))


def _data_type(values: Sequence[Any]) -> int:
    from tensorboard.plugins.hparams import api_pb2

    if values and all(isinstance(v, bool) for v in values):
        return api_pb2.DATA_TYPE_BOOL
    if values and all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        return api_pb2.DATA_TYPE_FLOAT64
    return api_pb2.DATA_TYPE_STRING


def _order(value: Any) -> tuple[int, Any]:
    """Numbers before strings, each in their own order (a mixed axis still sorts)."""
    return (0, value) if isinstance(value, int | float) else (1, str(value))
