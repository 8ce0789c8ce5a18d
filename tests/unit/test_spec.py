"""Sweep files -> trials: expansion, milestones, ids, and every validation error."""

from __future__ import annotations

import numpy as np
import pytest

from suite.cli.main import main
from suite.common.errors import SpecError
from suite.sweep.loader import load_sweep
from suite.sweep.yaml_reader import builtin_sweeps

BASIC = """
name: t
dataset: mnist
grid:
  model: [dcgan, vae]
  upsampling: [transpose, nearest, bilinear]
  seed: [0, 1]
fixed:
  latent_dim: 8
"""


def test_grid_is_the_cross_product(write_sweep):
    sweep = load_sweep(str(write_sweep(BASIC)))
    assert len(sweep.trials) == 2 * 3 * 2
    combos = {(t.model, t.upsampling, t.seed) for t in sweep.trials}
    assert len(combos) == 12
    assert all(t.latent_dim == 8 and t.dataset == "mnist" for t in sweep.trials)
    assert [t.index for t in sweep.trials] == list(range(12))
    assert all(t.upsampling for t in sweep.trials) and sweep.trials[0].batch_size == 256


def test_epochs_become_milestones_of_one_run(write_sweep):
    sweep = load_sweep(str(write_sweep("""
        name: t
        dataset: mnist
        grid: {model: [dcgan], epochs: [20, 5]}
    """)))
    (trial,) = sweep.trials
    assert trial.epochs == 20 and trial.milestones == (5, 20)


def test_list_of_grids_unites_cross_products(write_sweep):
    sweep = load_sweep(str(write_sweep("""
        name: t
        grid:
          - {dataset: [mnist], model: [dcgan, vae]}
          - {dataset: [cifar10], model: [cgan], latent_dim: [110]}
    """)))
    assert [(t.dataset, t.model, t.latent_dim) for t in sweep.trials] == [
        ("mnist", "dcgan", 100), ("mnist", "vae", 100), ("cifar10", "cgan", 110)]


def test_trial_id_is_stable_and_sensitive(write_sweep):
    a = load_sweep(str(write_sweep(BASIC))).trials
    b = load_sweep(str(write_sweep(BASIC.replace("name: t", "name: other")))).trials
    assert [t.trial_id for t in a] == [t.trial_id for t in b]  # the sweep name is not config
    assert len({t.trial_id for t in a}) == len(a)
    c = load_sweep(str(write_sweep(BASIC.replace("latent_dim: 8", "latent_dim: 9")))).trials
    assert not {t.trial_id for t in a} & {t.trial_id for t in c}


def test_trial_ids_and_order_are_pinned(write_sweep):
    """Results live under trial ids: a change to expansion or hashing must not move them."""
    sweep = load_sweep(str(write_sweep("""
        name: t
        dataset: mnist
        grid:
          epochs: [3, 1]
          model: [dcgan, cvae]
          seed: [0, 1]
        fixed: {latent_dim: 8, lr: 2.0e-4, max_train_images: 512, batch_size: 32}
    """)))
    assert [(t.index, t.trial_id, t.model, t.seed, t.milestones) for t in sweep.trials] == [
        (0, "784df9647b99", "dcgan", 0, (1, 3)), (1, "85a8d3624b53", "dcgan", 1, (1, 3)),
        (2, "f5bdd44c42fa", "cvae", 0, (1, 3)), (3, "58f2f6b4120d", "cvae", 1, (1, 3))]


def test_trial_round_trips_through_json(write_sweep):
    trial = load_sweep(str(write_sweep(BASIC))).trials[3]
    from suite.sweep.spec import Trial

    assert Trial.from_json(trial.to_json()) == trial


def test_yaml_exponent_without_dot_is_a_number(write_sweep):
    sweep = load_sweep(str(write_sweep("name: t\ndataset: mnist\nfixed: {model: vae, lr: 1e-3}\n")))
    assert sweep.trials[0].lr == pytest.approx(1e-3)


def test_builtin_sweeps_load():
    assert {"smoke", "seed-study"} <= set(builtin_sweeps())
    smoke = load_sweep("smoke")
    assert {t.model for t in smoke.trials} == {"dcgan", "vae", "cgan", "cvae"}
    assert {"transpose", "nearest"} <= {t.upsampling for t in smoke.trials}
    study = load_sweep("seed-study")
    cifar = [t for t in study.trials if t.dataset == "cifar10"]
    assert {t.model for t in cifar} == {"cgan", "cvae"} and {t.latent_dim for t in cifar} == {110}
    assert {t.model for t in study.trials if t.dataset == "mnist"} == {"dcgan", "vae"}


@pytest.fixture
def labelled_free_npz(tmp_path):
    path = tmp_path / "nolabels.npz"
    np.savez(path, x=np.zeros((64, 16, 16), np.uint8))
    return path


BAD_SWEEPS = {
    "unknown model": ("name: t\ndataset: mnist\ngrid: {model: [dcgan, biggan]}\n",
                      "grid.model", "known: dcgan, vae, cgan, cvae"),
    "unknown upsampling": ("name: t\ndataset: mnist\nfixed: {model: vae, upsampling: cubic}\n",
                           "fixed.upsampling", "transpose, nearest, bilinear, subpixel"),
    "unknown dataset": ("name: t\ndataset: imagenet\nfixed: {model: vae}\n",
                        "dataset", "mnist, fashion_mnist, cifar10"),
    "non-positive size": ("name: t\ndataset: mnist\ngrid: {model: [vae], latent_dim: [0, 8]}\n",
                          "grid.latent_dim", "must be positive"),
    "negative batch": ("name: t\ndataset: mnist\nfixed: {model: vae, batch_size: -4}\n",
                       "fixed.batch_size", "must be positive"),
    "float epochs": ("name: t\ndataset: mnist\nfixed: {model: vae, epochs: 1.5}\n",
                     "fixed.epochs", "whole number"),
    "unknown axis": ("name: t\ndataset: mnist\nfixed: {model: vae, latent: 3}\n",
                     "fixed.latent", "known axes"),
    "unknown top-level key": ("name: t\ndataset: mnist\nfixd: {model: vae}\n",
                              "fixd", "unknown key"),
    "missing model": ("name: t\ndataset: mnist\n", "model", "required axis"),
    "grid value not a list": ("name: t\ndataset: mnist\ngrid: {model: dcgan}\n",
                              "grid.model", "non-empty list"),
    "fixed value is a list": ("name: t\ndataset: mnist\nfixed: {model: [dcgan]}\n",
                              "fixed.model", "not a list"),
    "axis in grid and fixed": ("name: t\ndataset: mnist\ngrid: {model: [vae]}\n"
                               "fixed: {model: vae}\n",
                               "grid.model", "both grid and fixed"),
    "bad name": ("name: 'my sweep!'\ndataset: mnist\nfixed: {model: vae}\n", "name", "plain name"),
    "malformed yaml": ("name: t\ngrid: {model: [dcgan\n", "line", "malformed YAML"),
    "not a mapping": ("- a\n- b\n", "(top level)", "must be a mapping"),
    "zero workers": ("name: t\ndataset: mnist\ngrid: {model: [vae], workers: [1, 0]}\n",
                     "grid.workers", "must be positive"),
    "cap below one batch": ("name: t\ndataset: mnist\nfixed: {model: vae, batch_size: 64, "
                            "max_train_images: 10}\n", "max_train_images", "one global batch"),
    "unknown eval key": ("name: t\ndataset: mnist\nfixed: {model: vae}\neval: {samples: 3}\n",
                         "eval.samples", "eval takes"),
    "bad lr scaling": ("name: t\ndataset: mnist\nfixed: {model: vae, lr_scaling: cubic}\n",
                       "fixed.lr_scaling", "none, linear, sqrt"),
    "missing npz": ("name: t\ndataset: 'npz:/nonexistent/x.npz'\nfixed: {model: vae}\n",
                    "dataset", "does not exist"),
}


@pytest.mark.parametrize("case", sorted(BAD_SWEEPS))
def test_bad_sweep_is_one_clear_error(case, write_sweep, tmp_path, capsys):
    text, field, words = BAD_SWEEPS[case]
    path = write_sweep(text)
    with pytest.raises(SpecError) as info:
        load_sweep(str(path))
    message = str(info.value)
    assert str(path) in message and field in message and words in message, message
    # Through the CLI: exit 2, one message, no traceback, nothing written.
    out = tmp_path / "out"
    assert main(["run", str(path), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("genbench: error: ") and str(path) in err and field in err
    assert "Traceback" not in err
    assert not out.exists()


def test_conditional_model_on_unlabelled_data(write_sweep, labelled_free_npz):
    path = write_sweep(f"name: t\ndataset: 'npz:{labelled_free_npz}'\nfixed: {{model: cgan}}\n")
    with pytest.raises(SpecError, match="cgan is conditional but dataset") as info:
        load_sweep(str(path))
    assert "fix:" in str(info.value)


def test_image_size_models_cannot_take(write_sweep, tmp_path, capsys):
    npz = tmp_path / "odd.npz"
    np.savez(npz, x=np.zeros((300, 30, 30), np.uint8))
    path = write_sweep(f"name: t\ndataset: 'npz:{npz}'\nfixed: {{model: vae, batch_size: 8}}\n")
    out = tmp_path / "out"
    assert main(["run", str(path), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "30x30" in err and "multiple of 4" in err and "Traceback" not in err
    assert not out.exists()


def test_missing_file_and_unknown_builtin(tmp_path, capsys):
    assert main(["plan", str(tmp_path / "nope.yaml")]) == 2
    assert "no such file" in capsys.readouterr().err
    assert main(["plan", "smok"]) == 2
    assert "smoke" in capsys.readouterr().err  # lists the built-in names


def test_plan_prints_trials(capsys):
    assert main(["plan", "smoke"]) == 0
    out = capsys.readouterr().out
    assert "smoke: 8 trials" in out and "cvae" in out
