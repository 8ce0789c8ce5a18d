"""TensorBoard event files and sample GIFs written by real trials, read back."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from analysis.load import load_results, sample_path
from suite.artifacts.samples import GIF_NAME
from suite.artifacts.tensorboard import TENSORBOARD_DIR
from suite.cli.main import main
from suite.store import schema

SWEEP = """
name: tb
dataset: mnist
grid:
  model: [dcgan, cvae]
  epochs: [1, 2]
fixed:
  upsampling: nearest
  latent_dim: 8
  batch_size: 32
  max_train_images: 256
eval: {n_samples: 200, backbones: [domain]}
"""


def read_events(run_dir) -> dict[str, dict[int, object]]:
    """tag -> step -> value (a float for scalars, the decoded image array, or text)."""
    import tensorflow as tf

    out: dict[str, dict[int, object]] = {}
    files = sorted(run_dir.glob("events.out.tfevents.*"))
    assert files, f"no event files in {run_dir}"
    for path in files:
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            for value in event.summary.value:
                tensor = tf.make_ndarray(value.tensor)
                plugin = value.metadata.plugin_data.plugin_name
                if plugin == "hparams":  # the trial's session start/end (tests/unit/test_hparams)
                    continue
                if plugin == "images":  # [width, height, png...]
                    decoded = tf.io.decode_png(tensor[2]).numpy()
                    out.setdefault(value.tag, {})[event.step] = decoded
                elif plugin == "text":
                    out.setdefault(value.tag, {})[event.step] = tensor.item().decode()
                else:
                    out.setdefault(value.tag, {})[event.step] = float(tensor)
    return out


@pytest.fixture(scope="module")
def tb_run(tmp_path_factory, data_dir):
    root = tmp_path_factory.mktemp("tb")
    sweep = root / "sweep.yaml"
    sweep.write_text(SWEEP)
    out = root / "results"
    assert main(["run", str(sweep), "--out", str(out), "--data-dir", str(data_dir),
                 "--quiet"]) == 0
    return out


def test_every_trial_writes_losses_metrics_throughput_and_grids(tb_run):
    df = load_results(tb_run / "tb")
    runs = sorted((tb_run / "tb").glob(f"trials/*/{TENSORBOARD_DIR}/*"))
    assert len(runs) == df[schema.TRIAL_ID].nunique() == 2
    for run in runs:
        trial_id = run.parent.parent.name
        assert run.name.startswith(trial_id)  # the run is named by id and label
        rows = df[df[schema.TRIAL_ID] == trial_id].set_index(schema.EPOCH)
        events = read_events(run)
        model = rows[schema.MODEL].iloc[0]
        losses = ["loss/loss_g", "loss/loss_d"] if model == "dcgan" else ["loss/elbo"]
        for tag in losses:
            assert sorted(events[tag]) == [1, 2]
            column = tag.split("/")[1]
            assert events[tag][2] == pytest.approx(rows.loc[2, column], rel=1e-5)
        for tag, column in (("quality/fd_domain", schema.FD_DOMAIN),
                            ("throughput/images_per_sec", schema.IMAGES_PER_SEC),
                            ("throughput/train_time_s", schema.TRAIN_TIME_S)):
            assert sorted(events[tag]) == [1, 2]
            for epoch in (1, 2):
                assert events[tag][epoch] == pytest.approx(rows.loc[epoch, column], rel=1e-5)
        assert trial_id in events["config"][0]
        for epoch in (1, 2):  # the grid image is the PNG's grid (before its 2x upscale)
            grid = events["samples"][epoch]
            png = np.asarray(Image.open(sample_path(rows.loc[epoch])))
            assert grid.shape[:2] == (png.shape[0] // 2, png.shape[1] // 2)
            assert np.array_equal(grid[..., 0], png[::2, ::2])


def test_every_trial_writes_a_gif_of_its_grids(tb_run):
    df = load_results(tb_run / "tb")
    for _, row in df[df[schema.EPOCH] == 2].iterrows():
        gif = sample_path(row).parent / GIF_NAME
        with Image.open(gif) as im:
            assert im.n_frames == 2
            im.seek(1)
            last = np.asarray(im.convert("L"))
        png = np.asarray(Image.open(sample_path(row)))
        assert np.array_equal(last[:png.shape[0]], png)  # exact greys, label strip below


def read_hparams(directory) -> dict[str, object]:
    """The HParams plugin's data of one run, parsed, as TensorBoard's accumulator reads it."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import metadata

    acc = EventAccumulator(str(directory))
    acc.Reload()
    parse = {metadata.EXPERIMENT_TAG: metadata.parse_experiment_plugin_data,
             metadata.SESSION_START_INFO_TAG: metadata.parse_session_start_info_plugin_data,
             metadata.SESSION_END_INFO_TAG: metadata.parse_session_end_info_plugin_data}
    content = acc.PluginTagToContent(metadata.PLUGIN_NAME)
    return {tag: parse[tag](data) for tag, data in content.items()} | {
        "tensors": acc.Tags()["tensors"]}


def test_the_sweep_is_one_hparams_experiment_with_a_session_per_trial(tb_run, data_dir):
    from tensorboard.plugins.hparams import api_pb2, metadata

    from suite.artifacts.hparams import EXPERIMENT_FILE

    sweep = tb_run / "tb"
    df = load_results(sweep)
    experiment = read_hparams(sweep)[metadata.EXPERIMENT_TAG]
    (axis,) = experiment.hparam_infos  # the one axis that varies in SWEEP
    assert axis.name == schema.MODEL
    assert [v.string_value for v in axis.domain_discrete.values] == ["cvae", "dcgan"]
    metrics = [m.name.tag for m in experiment.metric_infos]
    written = set()
    for run in sweep.glob(f"trials/*/{TENSORBOARD_DIR}/*"):
        data = read_hparams(run)
        written |= set(data["tensors"])
        row = df[df[schema.TRIAL_ID] == run.parent.parent.name].iloc[-1]
        start = data[metadata.SESSION_START_INFO_TAG]
        assert start.group_name == row[schema.TRIAL_ID]
        for column in (schema.MODEL, schema.UPSAMPLING, schema.PRECISION):
            assert start.hparams[column].string_value == row[column]
        for column in (schema.SEED, schema.LATENT_DIM, schema.EPOCHS, schema.LR):
            assert start.hparams[column].number_value == pytest.approx(row[column])
        assert data[metadata.SESSION_END_INFO_TAG].status == api_pb2.STATUS_SUCCESS
    missing = set(metrics) - written
    assert metrics and missing <= {"loss/loss_recon", "loss/loss_kl"}, missing
    # A re-run (every trial skipped) leaves the one experiment file as it was.
    before = (sweep / EXPERIMENT_FILE).read_bytes()
    assert main(["run", str(tb_run.parent / "sweep.yaml"), "--out", str(tb_run),
                 "--data-dir", str(data_dir), "--quiet"]) == 0
    assert (sweep / EXPERIMENT_FILE).read_bytes() == before
    assert [p.name for p in sweep.glob("*tfevents*")] == [EXPERIMENT_FILE]
