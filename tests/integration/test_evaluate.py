"""evaluate_milestone on real models and MNIST, and `genbench run` filling the metric columns."""

from __future__ import annotations

import math

import numpy as np
import pytest
from standin_graph import build_standin_graph

from suite.metrics.backbones import domain
from suite.metrics.backbones.registry import clear_backbone_cache, get_backbone, resolve_backbones
from suite.metrics.cache import clear_loaded_references
from suite.models import MODELS, is_conditional, model_family
from suite.models.networks import NetSpec
from suite.store import schema
from suite.sweep.spec import EvalSpec, Trial
from suite.trial.evaluate import evaluate_milestone

N_SAMPLES = 300
DOMAIN_COLUMNS = {schema.FD_DOMAIN, schema.KID_DOMAIN, schema.KID_DOMAIN_STD,
                  schema.PRECISION_DOMAIN, schema.RECALL_DOMAIN}
ALWAYS = {schema.SPECTRAL_DISTANCE, schema.CHECKERBOARD_SCORE}
CONDITIONAL = {schema.CLASS_ACCURACY, schema.INTRA_CLASS_FD}
VAE = {schema.TEST_ELBO, schema.TEST_RECON_ERROR}
INCEPTION = {schema.FID_INCEPTION, schema.KID_INCEPTION, schema.KID_INCEPTION_STD,
             schema.PRECISION_INCEPTION, schema.RECALL_INCEPTION, schema.INCEPTION_SCORE}
INCEPTION_KERAS = {schema.FID_INCEPTION_KERAS, schema.KID_INCEPTION_KERAS,
                   schema.KID_INCEPTION_KERAS_STD, schema.PRECISION_INCEPTION_KERAS,
                   schema.RECALL_INCEPTION_KERAS, schema.INCEPTION_SCORE_KERAS}


@pytest.fixture(scope="session")
def backbones(eval_cache, mnist):
    return {"domain": get_backbone("domain", mnist)}


def make_trial(model: str, n_samples: int = N_SAMPLES, backbones=("domain",),
               batch_size: int = 128, seed: int = 0) -> Trial:
    return Trial(sweep="t", index=0, dataset="mnist", model=model, upsampling="transpose",
                 latent_dim=16, epochs=2, milestones=(1, 2), seed=seed, batch_size=64, lr=1e-3,
                 lr_scaling="none", kernel_size=5, workers=1, max_train_images=2048,
                 eval=EvalSpec(n_samples=n_samples, backbones=tuple(backbones),
                               batch_size=batch_size))


def build_model(trial: Trial, data):
    num_classes = data.num_classes if is_conditional(trial.model) else 0
    spec = NetSpec(data.image_shape, trial.latent_dim, num_classes, trial.upsampling,
                   trial.kernel_size)
    return MODELS.get(trial.model)(spec, trial.lr, trial.seed)


def expected_columns(model: str) -> set[str]:
    columns = DOMAIN_COLUMNS | ALWAYS
    if is_conditional(model):
        columns |= CONDITIONAL
    if model_family(model) == "vae":
        columns |= VAE
    return columns


def check_row(row: dict, model: str, n_fake: int = N_SAMPLES, n_real: int = N_SAMPLES) -> None:
    expected = expected_columns(model)
    metric_columns = DOMAIN_COLUMNS | ALWAYS | CONDITIONAL | VAE | INCEPTION | INCEPTION_KERAS
    assert {c for c in row if c in metric_columns} == expected, model
    for column in expected:
        assert isinstance(row[column], float) and math.isfinite(row[column]), (column, row[column])
    assert row[schema.FD_DOMAIN] > 0 and row[schema.KID_DOMAIN_STD] >= 0
    for column in (schema.PRECISION_DOMAIN, schema.RECALL_DOMAIN, schema.CLASS_ACCURACY):
        if column in expected:
            assert 0.0 <= row[column] <= 1.0, (column, row[column])
    assert row[schema.SPECTRAL_DISTANCE] > 0 and row[schema.CHECKERBOARD_SCORE] > 0
    if model_family(model) == "vae":
        assert row[schema.TEST_ELBO] < 0 and 0 < row[schema.TEST_RECON_ERROR] < 1
    assert row[schema.N_FAKE] == n_fake and row[schema.N_REAL] == n_real
    assert row[schema.EVAL_SPLIT].startswith("test[holdout-eval")
    assert row[schema.DOMAIN_WEIGHTS_ID].startswith("domain-v1-")
    assert "domain" in row[schema.RESIZE_METHOD]
    assert set(row) <= set(schema.COLUMNS)


@pytest.mark.parametrize("model", ["dcgan", "vae", "cgan", "cvae"])
def test_untrained_models_fill_every_column(model, mnist, backbones) -> None:
    trial = make_trial(model)
    row = evaluate_milestone(build_model(trial, mnist), mnist, trial, backbones, epoch=1)
    check_row(row, model)


def test_evaluation_is_deterministic_and_idempotent(mnist, backbones) -> None:
    trial = make_trial("cvae")
    model = build_model(trial, mnist)
    seed_state = np.asarray(model.noise_seed.state.value).copy()
    first = evaluate_milestone(model, mnist, trial, backbones, epoch=1)
    clear_loaded_references()  # the second evaluation reads the real statistics from disk
    clear_backbone_cache()  # ... and a freshly resolved classifier, loaded from its cache
    rebuilt = resolve_backbones(trial.eval.backbones, mnist, None)
    assert rebuilt["domain"] is not backbones["domain"]
    second = evaluate_milestone(model, mnist, trial, rebuilt, epoch=1)
    assert first == second
    # Evaluation leaves the model's training noise stream where it was.
    np.testing.assert_array_equal(np.asarray(model.noise_seed.state.value), seed_state)
    other_epoch = evaluate_milestone(model, mnist, trial, backbones, epoch=2)
    assert other_epoch[schema.FD_DOMAIN] != first[schema.FD_DOMAIN]  # fresh noise per epoch
    # The batch size only splits the work: same noise, same images, same metrics.
    rebatched = evaluate_milestone(model, mnist, make_trial("cvae", batch_size=77), backbones,
                                   epoch=1)
    assert rebatched[schema.FD_DOMAIN] == pytest.approx(first[schema.FD_DOMAIN], rel=1e-4)
    assert rebatched[schema.CLASS_ACCURACY] == pytest.approx(first[schema.CLASS_ACCURACY],
                                                             abs=2 / N_SAMPLES)


class RealImageGenerator:
    """A perfect conditional 'generator': unseen real training digits of the requested class."""

    def __init__(self, data) -> None:
        self.pools = {c: data.x_train[data.y_train == c] for c in range(data.num_classes)}
        self.taken = dict.fromkeys(self.pools, 0)

    def generate(self, noise, labels):
        images = []
        for c in labels:
            images.append(self.pools[int(c)][self.taken[int(c)]])
            self.taken[int(c)] += 1
        return np.stack(images).astype(np.float32) / 255.0


def test_real_images_as_samples_score_like_real_data(mnist, backbones) -> None:
    """The wiring's sanity check: samples that are real digits of the asked-for class score
    near the ideal (labels followed, manifolds overlap, no spectral artefacts)."""
    trial = make_trial("cgan")
    untrained = evaluate_milestone(build_model(trial, mnist), mnist, trial, backbones, epoch=1)
    ideal = evaluate_milestone(RealImageGenerator(mnist), mnist, trial, backbones, epoch=1)
    assert ideal[schema.CLASS_ACCURACY] >= 0.95
    assert ideal[schema.FD_DOMAIN] < 0.1 * untrained[schema.FD_DOMAIN]
    assert ideal[schema.INTRA_CLASS_FD] < 0.2 * untrained[schema.INTRA_CLASS_FD]
    assert abs(ideal[schema.KID_DOMAIN]) < 0.05 * untrained[schema.KID_DOMAIN]
    assert ideal[schema.PRECISION_DOMAIN] > 0.6 and ideal[schema.RECALL_DOMAIN] > 0.6
    assert untrained[schema.RECALL_DOMAIN] < 0.1
    assert ideal[schema.SPECTRAL_DISTANCE] < 0.2 < untrained[schema.SPECTRAL_DISTANCE]
    assert 0.7 < ideal[schema.CHECKERBOARD_SCORE] < 1.4


def test_briefly_trained_cvae_scores_better_than_untrained(mnist, backbones) -> None:
    """Trained until its samples are digits: 500 steps (4 passes over 8,000 images). After 64
    steps its samples were faint blobs, which domain judges ranked against the untrained
    model's grey noise by chance: FD 1-21% lower and KID up to 14% higher across four
    judges (recipes and seeds). After 500 the ELBO has jumped (-544 -> -112) and every
    judge agrees: FD 0.20-0.24 and KID 0.38-0.57 of the untrained model's."""
    from suite.training.loop import TrainConfig, train

    trial = make_trial("cvae")
    model = build_model(trial, mnist)
    before = evaluate_milestone(model, mnist, trial, backbones, epoch=1)
    outcome = train(model, mnist.x_train[:8000], mnist.y_train[:8000],
                    TrainConfig(epochs=4, milestones=(4,), batch_size=64, seed=0))
    assert outcome.status == schema.STATUS_OK
    after = evaluate_milestone(model, mnist, trial, backbones, epoch=2)
    check_row(after, "cvae")
    assert after[schema.TEST_ELBO] > before[schema.TEST_ELBO] + 100
    assert after[schema.TEST_RECON_ERROR] < 0.5 * before[schema.TEST_RECON_ERROR]
    assert after[schema.FD_DOMAIN] < 0.5 * before[schema.FD_DOMAIN]
    assert after[schema.KID_DOMAIN] < 0.8 * before[schema.KID_DOMAIN]


def test_non_finite_samples_give_nan_metrics_not_a_crash(mnist, backbones) -> None:
    trial = make_trial("cgan", n_samples=50)
    model = build_model(trial, mnist)
    model.generate = lambda noise, labels: np.full((len(noise), 28, 28, 1), np.nan, "f4")
    row = evaluate_milestone(model, mnist, trial, backbones, epoch=1)
    for column in DOMAIN_COLUMNS | ALWAYS | CONDITIONAL:
        assert math.isnan(row[column]), column
    assert row[schema.N_FAKE] == 50


def test_inception_columns_with_random_weights(tmp_path, monkeypatch, mnist, backbones) -> None:
    """Both Inception networks in one row, each in its own columns: `inception` (TTUR's graph;
    here its seeded stand-in) and `inception_keras`."""
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "empty-keras"))
    monkeypatch.setenv("GENBENCH_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.setenv("GENBENCH_OFFLINE", "1")
    trial = make_trial("cgan", n_samples=20, backbones=("domain", "inception", "inception_keras"),
                       batch_size=10)
    standin = tmp_path / "standin.pb"  # the graph's interface with seeded weights
    standin.write_bytes(build_standin_graph())
    built = {"domain": backbones["domain"],
             **resolve_backbones(("inception",), mnist, str(standin)),
             **resolve_backbones(("inception_keras",), mnist, "random")}
    row = evaluate_milestone(build_model(trial, mnist), mnist, trial, built, epoch=1)
    for column in INCEPTION | INCEPTION_KERAS | DOMAIN_COLUMNS | CONDITIONAL:
        assert math.isfinite(row[column]), column
    assert row[schema.FID_INCEPTION] != row[schema.FID_INCEPTION_KERAS]  # different networks
    for score in (schema.INCEPTION_SCORE, schema.INCEPTION_SCORE_KERAS):
        assert 1.0 <= row[score] <= 1008, score
    for column in (schema.PRECISION_INCEPTION, schema.RECALL_INCEPTION,
                   schema.PRECISION_INCEPTION_KERAS, schema.RECALL_INCEPTION_KERAS):
        assert 0 <= row[column] <= 1, column
    assert row[schema.INCEPTION_KERAS_WEIGHTS_ID] == "random"
    assert row[schema.INCEPTION_WEIGHTS_ID].startswith("classify_image_graph_def.pb:")
    assert "inception: graph bilinear 299" in row[schema.RESIZE_METHOD]
    assert "inception_keras: tf.image.resize bilinear antialias 299x299" in row[
        schema.RESIZE_METHOD]
    assert row[schema.FID_PROTOCOL].startswith("classify_image_graph_def.pb sha256:")
    assert row[schema.FID_PROTOCOL].endswith(
        f"; graph bilinear 299; pool_3 2048-d; n_real=20; n_fake=20; split={mnist.eval_split}")
    assert row[schema.N_REAL] == row[schema.N_FAKE] == 20
    assert not (tmp_path / "empty-cache" / "inception").exists()  # nothing was downloaded


SWEEP = """
name: tiny
dataset: mnist
grid:
  model: [dcgan, cvae]
  epochs: [1, 2]
fixed:
  upsampling: nearest
  latent_dim: 8
  batch_size: 32
  max_train_images: 256
eval: {n_samples: 200, batch_size: 100}
"""


def test_genbench_run_fills_metric_columns(tmp_path, data_dir, write_sweep, mnist,
                                           backbones) -> None:
    from analysis.load import load_results
    from suite.cli.main import main

    weights = domain.domain_weights_path(mnist)
    assert backbones["domain"].meta["weights_path"] == str(weights)
    cached = sorted(p.name for p in weights.parent.iterdir())
    before = weights.stat()
    sweep = write_sweep(SWEEP)
    assert main(["run", str(sweep), "--out", str(tmp_path / "out"), "--data-dir", str(data_dir),
                 "--quiet"]) == 0
    # The session's cached classifier was reused: the same file, untouched, and no new one.
    after = weights.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert sorted(p.name for p in weights.parent.iterdir()) == cached
    df = load_results(tmp_path / "out" / "tiny", deduplicate=False)
    assert len(df) == 4 and set(df[schema.STATUS]) == {schema.STATUS_OK}
    for _, row in df.iterrows():
        model = row[schema.MODEL]
        for column in expected_columns(model):
            assert math.isfinite(row[column]), (model, column)
        assert row[schema.FD_DOMAIN] > 0
        assert 0 <= row[schema.PRECISION_DOMAIN] <= 1 and 0 <= row[schema.RECALL_DOMAIN] <= 1
        assert row[schema.KID_DOMAIN_STD] >= 0 and row[schema.CHECKERBOARD_SCORE] > 0
        assert row[schema.N_FAKE] == 200 and row[schema.N_REAL] == 200
        assert row[schema.EVAL_TIME_S] > 0 and row[schema.DOMAIN_WEIGHTS_ID]
        if model == "cvae":
            assert 0 <= row[schema.CLASS_ACCURACY] <= 1 and row[schema.TEST_ELBO] < 0
        else:
            assert math.isnan(row[schema.TEST_ELBO]) and math.isnan(row[schema.CLASS_ACCURACY])
        assert math.isnan(row[schema.FID_INCEPTION])


def test_genbench_run_stops_before_training_on_bad_eval_setup(tmp_path, data_dir, write_sweep,
                                                              monkeypatch, capsys) -> None:
    from suite.cli.main import main

    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "empty-keras"))
    monkeypatch.setenv("GENBENCH_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.setenv("GENBENCH_OFFLINE", "1")
    out = tmp_path / "out"
    for backbones, expected in (("[domain, clip]", "unknown backbone 'clip'"),
                                ("[inception]", "classify_image_graph_def.pb not found"),
                                ("[inception_keras]",
                                 "inception_v3_weights_tf_dim_ordering_tf_kernels")):
        sweep = write_sweep(SWEEP.replace("eval: {n_samples: 200, batch_size: 100}",
                                          f"eval: {{n_samples: 200, backbones: {backbones}}}"))
        assert main(["run", str(sweep), "--out", str(out), "--data-dir", str(data_dir),
                     "--quiet"]) == 2
        err = capsys.readouterr().err
        assert "eval.backbones" in err and expected in err
        assert not (out / "tiny" / "trials").exists()  # nothing started
