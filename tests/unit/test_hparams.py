"""The sweep's HParams experiment file, read back with TensorBoard's own event reader."""

from __future__ import annotations

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import api_pb2, metadata

from suite.artifacts.hparams import (
    EXPERIMENT_FILE,
    sweep_axes,
    sweep_metrics,
    write_experiment,
    write_sweep_experiment,
)
from suite.store import schema


def configs(n: int = 4) -> list[dict]:
    return [{schema.MODEL: ("dcgan", "vae")[i % 2], schema.SEED: i // 2, schema.LATENT_DIM: 8,
             schema.MAX_TRAIN_IMAGES: None, schema.TRIAL_ID: f"t{i}"} for i in range(n)]


def read_experiment(directory) -> api_pb2.Experiment:
    acc = EventAccumulator(str(directory))
    acc.Reload()
    content = acc.PluginTagToContent(metadata.PLUGIN_NAME)
    assert list(content) == [metadata.EXPERIMENT_TAG]
    return metadata.parse_experiment_plugin_data(content[metadata.EXPERIMENT_TAG])


def test_the_axes_are_the_columns_that_vary_with_their_values() -> None:
    assert sweep_axes(configs()) == {schema.MODEL: ["dcgan", "vae"], schema.SEED: [0, 1]}
    one = sweep_axes(configs(1))  # nothing varies: the axes a reader looks for first
    assert list(one) == [schema.MODEL, schema.UPSAMPLING, schema.LATENT_DIM, schema.SEED]
    assert one[schema.UPSAMPLING] == []  # absent from the config: no domain


def test_metrics_follow_the_families_and_backbones() -> None:
    metrics = sweep_metrics(["gan"], ["domain"])
    assert metrics[:2] == ["loss/loss_g", "loss/loss_d"]
    assert "quality/fd_domain" in metrics and "quality/kid_domain" in metrics
    assert not any("elbo" in m or "inception" in m or m.endswith("_std") for m in metrics)
    assert "loss/elbo" in sweep_metrics(["gan", "vae"], ["inception"])
    assert "quality/fid_inception" in sweep_metrics(["vae"], ["inception"])


def test_the_experiment_reads_back_with_typed_domains(tmp_path) -> None:
    path = write_sweep_experiment(tmp_path, configs(), ["gan", "vae"], ["domain"])
    assert path.name == EXPERIMENT_FILE
    exp = read_experiment(tmp_path)
    infos = {h.name: h for h in exp.hparam_infos}
    assert list(infos) == [schema.MODEL, schema.SEED]
    assert infos[schema.MODEL].type == api_pb2.DATA_TYPE_STRING
    assert [v.string_value for v in infos[schema.MODEL].domain_discrete.values] == ["dcgan", "vae"]
    assert infos[schema.SEED].type == api_pb2.DATA_TYPE_FLOAT64
    assert [v.number_value for v in infos[schema.SEED].domain_discrete.values] == [0, 1]
    tags = [m.name.tag for m in exp.metric_infos]
    assert tags == sweep_metrics(["gan", "vae"], ["domain"])


def test_rewriting_is_idempotent_and_a_changed_sweep_replaces_it(tmp_path) -> None:
    path = write_experiment(tmp_path, {schema.SEED: [0, 1]}, ["loss/loss_g"])
    first = path.read_bytes()
    stamp = path.stat().st_mtime_ns
    write_experiment(tmp_path, {schema.SEED: [0, 1]}, ["loss/loss_g"])
    assert path.read_bytes() == first and path.stat().st_mtime_ns == stamp
    write_experiment(tmp_path, {schema.SEED: [0, 1, 2]}, ["loss/loss_g"])
    assert [p.name for p in tmp_path.iterdir()] == [EXPERIMENT_FILE]  # no temporary left
    seeds = read_experiment(tmp_path).hparam_infos[0].domain_discrete.values
    assert [v.number_value for v in seeds] == [0, 1, 2]


def test_every_trial_status_has_a_session_status() -> None:
    """Each row status maps to a value TensorBoard's Status enum really has."""
    from tensorboard.plugins.hparams import api_pb2

    from suite.artifacts.hparams import SESSION_STATUS, session_end_summary
    from suite.store import schema

    for status in (schema.STATUS_OK, schema.STATUS_DIVERGED, schema.STATUS_FAILED):
        assert SESSION_STATUS[status] in api_pb2.Status.keys()
        assert session_end_summary(status)
