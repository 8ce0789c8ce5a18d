"""The first run's promise (`make run`, the built-in `demo` sweep), checked on the samples
it produces -- not on wall time:

- the resize (nearest) GAN draws digits: the domain classifier, trained on real MNIST,
  reads most of the sample grid the run saved as a digit with high confidence, more
  of it than of the transposed GAN's grid; the VAE's grid is read as digits too;
- the transposed-convolution VAE decoder leaves checkerboards: its `checkerboard_score`
  is far above the resize decoder's, and so is its grid's energy at the 2-pixel period;
- resize-convolution costs compute (it convolves at the larger size: more FLOPs).

Runs the full `demo` sweep, unchanged (a cheaper variant would not show the promise):
about 3.5 minutes of training on a quiet 2-core AVX2 machine, plus the domain classifier
once per test session.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from analysis.load import TRIAL_DIR, load_results
from suite.artifacts.samples import UNCONDITIONAL_GRID
from suite.cli.main import main
from suite.data.catalog import load_dataset
from suite.metrics.backbones.domain import load_or_train_domain_network
from suite.store import schema
from suite.sweep.loader import load_sweep

REPO = Path(__file__).resolve().parents[2]
CONFIDENT = 0.9  # softmax probability of the top class
PNG_SCALE, PAD = 2, 2  # suite.artifacts.samples.save_grid_png's defaults


@pytest.fixture(scope="module")
def demo(tmp_path_factory, data_dir):
    out = tmp_path_factory.mktemp("demo")
    assert main(["run", "demo", "--out", str(out), "--data-dir", str(data_dir), "--quiet"]) == 0
    df = load_results(out / "demo")
    final = df[df[schema.EPOCH] == df[schema.EPOCHS]]
    return {(r[schema.MODEL], r[schema.UPSAMPLING]): r for _, r in final.iterrows()}


@pytest.fixture(scope="module")
def classifier(data_dir, demo):
    network, _ = load_or_train_domain_network(load_dataset("mnist", str(data_dir)))
    return network


def grid_to_images(row, size: int = 28) -> np.ndarray:
    """A row's samples back out of its grid PNG: (rows*cols, 28, 28, 1) floats in [0, 1]."""
    path = Path(row[TRIAL_DIR]) / row[schema.SAMPLES_PNG]
    grid = np.asarray(Image.open(path).convert("L"), np.float32)[::PNG_SCALE, ::PNG_SCALE]
    rows, cols = UNCONDITIONAL_GRID
    cells = [grid[PAD + r * (size + PAD):PAD + r * (size + PAD) + size,
                  PAD + c * (size + PAD):PAD + c * (size + PAD) + size]
             for r in range(rows) for c in range(cols)]
    return (np.stack(cells) / 255.0)[..., None]


def confident_fraction(network, images: np.ndarray, confident: float = CONFIDENT) -> float:
    """The fraction of images whose top class has softmax probability >= `confident`."""
    logits = np.asarray(network(images, training=False)[1], np.float64)
    probs = np.exp(logits - logits.max(axis=1, keepdims=True))
    probs /= probs.sum(axis=1, keepdims=True)
    return float((probs.max(axis=1) >= confident).mean())


def period2_energy(images: np.ndarray) -> float:
    """Mean power at the Nyquist row/column of the images' spectra (checkerboard energy)."""
    power = np.abs(np.fft.fft2(images[..., 0] - images[..., 0].mean(axis=(1, 2),
                                                                      keepdims=True))) ** 2
    n = images.shape[1] // 2
    return float(power[:, n, :].mean() + power[:, :, n].mean())


def test_demo_is_the_make_run_default_and_small():
    sweep = load_sweep("demo")
    assert {(t.model, t.upsampling) for t in sweep.trials} == {
        ("dcgan", "transpose"), ("dcgan", "nearest"), ("vae", "transpose"), ("vae", "nearest")}
    assert all(t.workers == 1 and t.width < 1 and t.beta1 == 0.5 for t in sweep.trials)
    assert "SWEEP  ?= demo" in (REPO / "Makefile").read_text()


def test_every_trial_finished(demo):
    assert len(demo) == 4
    assert all(r[schema.STATUS] == schema.STATUS_OK for r in demo.values())


def test_gan_resize_variant_draws_digits(demo, classifier, data_dir):
    # The judge itself reads real digits: the whole eval split, as 64 images swing by a few
    # points (the 250-step classifier: 0.949 of 2,000 at >= 0.9 confidence, 0.875 of 64)
    real = load_dataset("mnist", str(data_dir)).x_eval.astype(np.float32) / 255.0
    assert confident_fraction(classifier, real) > 0.9
    nearest = grid_to_images(demo[("dcgan", "nearest")])
    transpose = grid_to_images(demo[("dcgan", "transpose")])
    # measured: 0.47 of the resize GAN's grid at >= 0.9 confidence, 0.25 of the transposed
    # (judged by the 250-step domain classifier; 0.59 and 0.42 by the 800-step one, at 1/4
    # width)
    assert confident_fraction(classifier, nearest) >= 0.35
    assert confident_fraction(classifier, nearest) >= confident_fraction(classifier, transpose)
    # and its 1,000 samples sit closer to real digits (measured fd_domain 105 vs 187)
    assert (demo[("dcgan", "nearest")][schema.FD_DOMAIN]
            < demo[("dcgan", "transpose")][schema.FD_DOMAIN])


def test_vae_draws_digits(demo, classifier):
    """VAE samples are blurrier: most are read as one digit, if less confidently."""
    nearest = grid_to_images(demo[("vae", "nearest")])
    assert confident_fraction(classifier, nearest, confident=0.5) >= 0.7  # measured 0.97


def test_transposed_decoder_leaves_checkerboards(demo):
    """The VAE pair shows it plainly (measured checkerboard_score 52 vs 0.02). The GAN
    pair is not asserted: its discriminator penalises the pattern and both GANs' sharp
    strokes carry Nyquist power (scores 1.6-3; docs/first-run.md)."""
    transpose, nearest = demo[("vae", "transpose")], demo[("vae", "nearest")]
    assert transpose[schema.CHECKERBOARD_SCORE] > 10 * nearest[schema.CHECKERBOARD_SCORE]
    assert period2_energy(grid_to_images(transpose)) > 5 * period2_energy(grid_to_images(nearest))


def test_resize_costs_compute(demo):
    """The other side of the trade: resize-convolution computes at the larger size, so its
    training step needs more FLOPs (counted from the built models, so not a timing; the
    images/s it costs are measured by benchmarks/bench_trainer.py --section options)."""
    for model in ("dcgan", "vae"):
        assert (demo[(model, "nearest")][schema.FLOPS_PER_IMAGE]
                > demo[(model, "transpose")][schema.FLOPS_PER_IMAGE])
