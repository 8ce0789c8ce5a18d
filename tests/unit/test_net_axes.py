"""The depth, width, beta1 and jit_compile axes: defaults keep trial ids, values reach rows,
bounds hold."""

from __future__ import annotations

import pytest

from suite.common.errors import SpecError
from suite.store import schema
from suite.sweep.loader import load_sweep
from suite.sweep.spec import AXES, LATE_AXES, Trial
from suite.trial.columns import config_columns

BASE = """
name: t
dataset: mnist
fixed: {model: dcgan, latent_dim: 8, batch_size: 32, max_train_images: 512}
"""


def one_trial(write_sweep, extra: str = "") -> Trial:
    text = BASE.replace("max_train_images: 512}", f"max_train_images: 512{extra}}}")
    (trial,) = load_sweep(str(write_sweep(text))).trials
    return trial


@pytest.mark.parametrize("axis, default", [("depth", 1), ("width", 1.0), ("beta1", 0.9),
                                           ("jit_compile", "false")])
def test_default_written_out_keeps_the_trial_id(axis, default, write_sweep):
    """Naming an axis at its default must not move the results of existing sweeps."""
    plain = one_trial(write_sweep)
    explicit = one_trial(write_sweep, f", {axis}: {default}")
    assert axis in LATE_AXES and str(AXES[axis][1]).lower() == str(default)
    assert explicit.trial_id == plain.trial_id
    assert axis not in plain.config()


@pytest.mark.parametrize("axis, value", [("depth", 0), ("depth", 3), ("width", 0.5),
                                         ("width", 4), ("beta1", 0.5), ("beta1", 0.0),
                                         ("jit_compile", True)])
def test_other_values_change_the_id_and_reach_the_row(axis, value, write_sweep):
    plain = one_trial(write_sweep)
    trial = one_trial(write_sweep, f", {axis}: {value}")
    assert trial.trial_id != plain.trial_id
    assert trial.config()[axis] == value
    row = config_columns(trial)
    assert row[getattr(schema, axis.upper())] == value
    assert Trial.from_json(trial.to_json()) == trial


def test_whole_width_is_a_float_and_hashes_like_its_float(write_sweep):
    as_int = one_trial(write_sweep, ", width: 2")
    as_float = one_trial(write_sweep, ", width: 2.0")
    assert isinstance(as_int.width, float) and as_int.trial_id == as_float.trial_id


def test_yaml_exponent_without_dot_is_a_beta1(write_sweep):
    assert one_trial(write_sweep, ", beta1: 5e-1").beta1 == 0.5


def test_axes_are_design_columns_of_every_row():
    for column in (schema.DEPTH, schema.WIDTH, schema.BETA1, schema.JIT_COMPILE):
        assert column in schema.CONFIG_COLUMNS and column in schema.COLUMN_TYPES


def test_grid_over_depth_and_width_expands(write_sweep):
    text = BASE + "grid: {depth: [0, 1, 2], width: [0.25, 1.0]}\n"
    trials = load_sweep(str(write_sweep(text))).trials
    assert sorted((t.depth, t.width) for t in trials) == [
        (0, 0.25), (0, 1.0), (1, 0.25), (1, 1.0), (2, 0.25), (2, 1.0)]
    assert len({t.trial_id for t in trials}) == 6


BAD = {
    "negative depth": ("depth: -1", "fixed.depth", "must be a whole number >= 0"),
    "fractional depth": ("depth: 1.5", "fixed.depth", "whole number"),
    "huge depth": ("depth: 1000", "fixed.depth", "at most 32"),
    "zero width": ("width: 0", "fixed.width", "must be in [0.0625, 8]"),
    "huge width": ("width: 1.0e+300", "fixed.width", "must be in [0.0625, 8]"),
    "infinite width": ("width: .inf", "fixed.width", "must be in"),
    "text width": ("width: wide", "fixed.width", "must be a number"),
    "bool width": ("width: true", "fixed.width", "must be a number"),
    "beta1 of one": ("beta1: 1.0", "fixed.beta1", "must be in [0, 1)"),
    "negative beta1": ("beta1: -0.1", "fixed.beta1", "must be in [0, 1)"),
    "nan beta1": ("beta1: .nan", "fixed.beta1", "must be in [0, 1)"),
    "text jit_compile": ("jit_compile: fast", "fixed.jit_compile", "must be true or false"),
    "numeric jit_compile": ("jit_compile: 1", "fixed.jit_compile", "must be true or false"),
    "XLA with Horovod": ("jit_compile: true, workers: 2", "jit_compile",
                         "Horovod's collectives are not XLA operations"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_value_is_one_clear_error(case, write_sweep):
    setting, field, words = BAD[case]
    with pytest.raises(SpecError) as info:
        one_trial(write_sweep, ", " + setting)
    message = str(info.value)
    assert field in message and words in message and "\n  fix: " in message, message
    assert len(message) < 400


def test_seed_study_uses_each_familys_own_settings():
    trials = load_sweep("seed-study").trials
    assert len(trials) == 24
    for t in trials:
        if t.model in ("dcgan", "cgan"):  # the DCGAN tutorial
            assert (t.batch_size, t.lr, t.epochs) == (256, 1e-4, 50)
        if t.model == "vae":  # the CVAE tutorial
            assert (t.dataset, t.batch_size, t.epochs) == ("mnist", 32, 10)
        assert t.latent_dim == (110 if t.dataset == "cifar10" else 100)
        assert (t.depth, t.width, t.beta1) == (1, 1.0, 0.9)  # the tutorial networks
    assert {t.seed for t in trials} == {0, 1, 2}


def test_depth_study_is_the_mnist_half_over_depth():
    study = load_sweep("depth-study").trials
    seed = {(t.model, t.upsampling, t.seed): t for t in load_sweep("seed-study").trials
            if t.dataset == "mnist"}
    assert len(study) == 48 and {t.depth for t in study} == {0, 1, 2, 3}
    for t in study:
        same = seed[(t.model, t.upsampling, t.seed)]
        assert (t.batch_size, t.lr, t.latent_dim, t.milestones) == (
            same.batch_size, same.lr, same.latent_dim, same.milestones)
        if t.depth == 1:  # the tutorial depth: the very trial of the seed study
            assert t.trial_id == same.trial_id
