"""Feature backbones: the domain classifier on real MNIST, its cache, the Keras Inception path
(`inception_keras`: random weights, no download), and the preflight errors that stop a sweep
early. The `inception` backbone (TTUR's graph) is tested in test_inception_graph.py."""

from __future__ import annotations

import numpy as np
import pytest
from standin_graph import build_standin_graph

from suite.common.errors import GenbenchError
from suite.data.catalog import load_dataset
from suite.metrics.backbones import domain
from suite.metrics.backbones.registry import (
    BACKBONES,
    check_eval_setup,
    clear_backbone_cache,
    get_backbone,
    prepare_eval,
    resolve_backbones,
)
from suite.sweep.spec import EvalSpec, Trial

MNIST_MIN_ACCURACY = 0.98  # measured 98.55-98.65% (250-300 steps; 99.2% after 800)


@pytest.fixture(scope="session")
def mnist_domain(eval_cache, mnist):
    return get_backbone("domain", mnist)


def make_trial(backbones: tuple[str, ...], dataset: str = "mnist", model: str = "dcgan") -> Trial:
    return Trial(sweep="t", index=0, dataset=dataset, model=model, upsampling="nearest",
                 latent_dim=8, epochs=1, milestones=(1,), seed=0, batch_size=32, lr=2e-4,
                 lr_scaling="none", kernel_size=5, workers=1, max_train_images=None,
                 eval=EvalSpec(n_samples=64, backbones=backbones, batch_size=32))


def unlabelled_npz(tmp_path, mnist) -> str:
    path = tmp_path / "digits.npz"
    np.savez(path, x=mnist.x_eval[:400])  # no `y`
    return f"npz:{path}"


# ------------------------------------------------------------------------------ domain


def test_domain_classifier_reaches_its_accuracy_on_real_mnist(mnist, mnist_domain) -> None:
    assert mnist.train_split.startswith("test[holdout-train") and len(mnist.x_train) == 8000
    images = mnist.x_eval.astype(np.float32) / 255.0
    features, logits = mnist_domain.images_to_outputs(images)
    accuracy = float((logits.argmax(axis=1) == mnist.y_eval).mean())
    assert accuracy >= MNIST_MIN_ACCURACY, accuracy
    assert features.shape == (len(images), mnist_domain.feature_dim) == (2000, 128)
    assert np.isfinite(features).all() and features.std() > 0
    assert mnist_domain.meta["eval_accuracy"] == pytest.approx(accuracy, abs=1e-9)
    assert mnist_domain.weights_id.startswith("domain-v1-")


def test_domain_classifier_is_cached_on_disk_and_not_retrained(eval_cache, mnist,
                                                              mnist_domain) -> None:
    weights = domain.domain_weights_path(mnist)
    assert weights.is_file() and weights.parent == eval_cache / "domain"
    assert weights.name == f"{domain.domain_cache_name(mnist)[0]}.weights.h5"
    assert not list(weights.parent.glob(".*tmp*")), "temporary files left behind"
    before_stat = weights.stat()
    images = mnist.x_eval[:300].astype(np.float32) / 255.0
    before = mnist_domain.images_to_features(images)
    clear_backbone_cache()  # a new process would start like this: nothing built yet
    again = get_backbone("domain", mnist)
    assert again is not mnist_domain
    assert again.meta["trained_now"] is False, "the cached classifier was trained again"
    after_stat = weights.stat()
    assert (after_stat.st_ino, after_stat.st_mtime_ns) == (before_stat.st_ino,
                                                           before_stat.st_mtime_ns)
    assert again.weights_id == mnist_domain.weights_id
    np.testing.assert_array_equal(again.images_to_features(images), before)
    assert get_backbone("domain", mnist) is again  # built once per process


def test_backbones_survive_clear_session(mnist, mnist_domain) -> None:
    import keras

    images = mnist.x_eval[:64].astype(np.float32) / 255.0
    before = mnist_domain.images_to_outputs(images)
    keras.backend.clear_session()  # what the worker does at the start of every trial
    after = get_backbone("domain", mnist).images_to_outputs(images)
    np.testing.assert_array_equal(before[0], after[0])
    np.testing.assert_array_equal(before[1], after[1])


def test_domain_backbone_refuses_unlabelled_data(tmp_path, mnist, eval_cache) -> None:
    name = unlabelled_npz(tmp_path, mnist)
    data = load_dataset(name)
    assert not data.labelled
    with pytest.raises(GenbenchError, match=r"has no labels.*`y` in the npz"):
        domain.build_domain_extractor(data)
    # Through the registry the fix names the backbones that need no labels.
    with pytest.raises(GenbenchError,
                       match=r"has no labels.*\n.*backbones: \[inception, inception_keras\]"):
        resolve_backbones(["domain"], data, None)
    with pytest.raises(GenbenchError,
                       match=r"eval\.backbones.*\n.*backbones: \[inception, inception_keras\]"):
        check_eval_setup([make_trial(("domain",), dataset=name)], {name: data})
    with pytest.raises(GenbenchError, match=r"eval\.backbones.*no labels"):
        prepare_eval([make_trial(("domain",), dataset=name)], {name: data}, None, "s.yaml")
    # The backbones that need no labels accept it: Keras Inception (random weights) and the
    # graph (a stand-in file with the standard interface).
    check_eval_setup([make_trial(("inception_keras",), dataset=name)], {name: data}, "random")
    standin = tmp_path / "standin.pb"
    standin.write_bytes(build_standin_graph())
    check_eval_setup([make_trial(("inception",), dataset=name)], {name: data}, str(standin))


def test_unknown_backbone_is_named_with_the_known_ones(mnist) -> None:
    with pytest.raises(GenbenchError) as info:
        check_eval_setup([make_trial(("domain", "clip"))], {"mnist": mnist}, source="s.yaml")
    message = str(info.value)
    assert "s.yaml: eval.backbones" in message and "'clip'" in message
    assert "domain, inception, inception_keras" in message
    assert BACKBONES.names() == ["domain", "inception", "inception_keras"]


# ------------------------------------------------------------------------ inception_keras


def test_inception_random_weights_run_end_to_end_without_download(
        tmp_path, monkeypatch, mnist) -> None:
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "empty-keras"))
    monkeypatch.setenv("GENBENCH_OFFLINE", "1")
    prepare_eval([make_trial(("domain", "inception_keras"))], {"mnist": mnist}, "random",
                 "s.yaml")
    inception = resolve_backbones(["inception_keras"], mnist, "random")["inception_keras"]
    assert inception.weights_id == "random" and inception.has_logits
    assert inception.info is BACKBONES.get("inception_keras")
    assert inception.name == "inception_keras"
    assert "299" in inception.resize_method and "antialias" in inception.resize_method
    gray = mnist.x_eval[:6].astype(np.float32) / 255.0
    features, logits = inception.images_to_outputs(gray)
    assert features.shape == (6, 2048) and logits.shape == (6, 1000)
    assert np.isfinite(features).all() and np.isfinite(logits).all()
    assert features.std() > 0 and np.abs(features[0] - features[1]).max() > 0
    colour = np.random.default_rng(0).random((2, 32, 32, 3), dtype=np.float32)
    assert inception.images_to_features(colour).shape == (2, 2048)
    # Back to grayscale after RGB: each image shape gets its own graph (and its tiling).
    np.testing.assert_allclose(inception.images_to_features(gray[:2]), features[:2], rtol=1e-5,
                               atol=1e-7)
    assert not (tmp_path / "empty-keras" / "models").exists() or not any(
        (tmp_path / "empty-keras" / "models").iterdir()), "something was downloaded"
    # Seeded: a second build from scratch gives the same random network, and building it
    # leaves the caller's Python random stream (Keras' default seeds) where it was.
    import random

    from suite.metrics.backbones.inception import build_inception_extractor

    state = random.getstate()
    rebuilt = build_inception_extractor(mnist, "random")
    assert random.getstate() == state
    np.testing.assert_array_equal(rebuilt.images_to_features(gray), features)


def test_inception_without_weights_fails_clearly_before_training(tmp_path, monkeypatch,
                                                                 mnist) -> None:
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "empty-keras"))
    monkeypatch.setenv("GENBENCH_OFFLINE", "1")  # no download attempt, even when online
    with pytest.raises(GenbenchError) as info:
        check_eval_setup([make_trial(("inception_keras",))], {"mnist": mnist}, None,
                         source="s.yaml")
    message = str(info.value)
    assert "s.yaml: eval.backbones: inception_keras: " in message
    assert "inception_v3_weights_tf_dim_ordering_tf_kernels.h5" in message
    assert str(tmp_path / "empty-keras" / "models") in message
    assert "--inception-weights" in message and "GENBENCH_OFFLINE" in message
    with pytest.raises(GenbenchError,
                       match="s.yaml: eval.backbones: inception_keras: .*no such file"):
        prepare_eval([make_trial(("inception_keras",))], {"mnist": mnist},
                     str(tmp_path / "missing.h5"), "s.yaml")
    # A file that is not Keras weights (here TTUR's graph format) is refused before training.
    graph = tmp_path / "classify_image_graph_def.pb"
    graph.write_bytes(b"\n\x0e\n\nExpandDims\x12\x00")
    with pytest.raises(GenbenchError, match=r"inception_keras: .*not a Keras weights file"):
        prepare_eval([make_trial(("inception_keras",))], {"mnist": mnist}, str(graph), "s.yaml")


def test_inception_weights_from_the_keras_cache_and_notop_files(tmp_path, monkeypatch,
                                                                mnist) -> None:
    """A weights file in $KERAS_HOME/models is found; a notop file gives features, no logits."""
    import keras

    from suite.metrics.backbones.extractor import seeded_construction
    from suite.metrics.backbones.inception import NOTOP_FILE, locate_inception_weights

    with seeded_construction(1):
        net = keras.applications.InceptionV3(include_top=False, weights=None, pooling="avg")
    saved = tmp_path / "inception_notop.weights.h5"
    net.save_weights(saved)
    models = tmp_path / "keras" / "models"
    models.mkdir(parents=True)
    (models / NOTOP_FILE).symlink_to(saved)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.setenv("GENBENCH_OFFLINE", "1")
    located = locate_inception_weights(None)
    assert located.path == models / NOTOP_FILE and located.weights_id.startswith(NOTOP_FILE)
    extractor = get_backbone("inception_keras", mnist, str(saved))
    assert not extractor.has_logits and extractor.weights_id.startswith(saved.name)
    images = mnist.x_eval[:3].astype(np.float32) / 255.0
    features, logits = extractor.images_to_outputs(images)
    assert logits is None
    expected = net(extractor_input(images), training=False)
    np.testing.assert_allclose(features, np.asarray(expected), rtol=1e-5, atol=1e-6)


def extractor_input(images: np.ndarray):
    from suite.metrics.backbones.inception import inception_preprocess

    return inception_preprocess(images)


def test_too_few_eval_samples_are_refused(mnist) -> None:
    trial = make_trial(("domain",))
    small = Trial(**{**trial.__dict__, "eval": EvalSpec(n_samples=5, backbones=("domain",))})
    with pytest.raises(GenbenchError, match=r"eval\.n_samples.*n_samples 5"):
        check_eval_setup([small], {"mnist": mnist})


# ------------------------------------------------------------------------------ the cache

CONCURRENT_REFERENCE = """
import sys, time
import numpy as np
from suite.metrics.cache import ReferenceKey, load_or_compute_reference

def compute():
    with open(sys.argv[1], "a") as log:  # one line per computation
        log.write("computed\\n")
    time.sleep(1.0)  # the others arrive while this one works
    rng = np.random.default_rng(0)
    return rng.standard_normal((500, 16)), np.arange(500) % 10

key = ReferenceKey("mnist", "test", "domain", "w1", 500, "none", "abc123")
ref = load_or_compute_reference(key, compute)
print(repr(float(ref.stats.mu.sum())), ref.features.shape, ref.labels[:3].tolist())
"""


def test_reference_statistics_are_computed_once_by_concurrent_processes(tmp_path) -> None:
    import os
    import subprocess
    import sys

    log = tmp_path / "computations.log"
    env = {**os.environ, "GENBENCH_CACHE": str(tmp_path / "cache")}
    procs = [subprocess.Popen([sys.executable, "-c", CONCURRENT_REFERENCE, str(log)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(3)]
    outputs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), [err for _, err in outputs]
    assert log.read_text().splitlines() == ["computed"]
    assert len({out for out, _ in outputs}) == 1 and "(500, 16) [0, 1, 2]" in outputs[0][0]
    files = sorted(p.name for p in (tmp_path / "cache" / "reference").iterdir())
    assert len([f for f in files if f.endswith(".npz")]) == 1
    assert not [f for f in files if ".tmp" in f]
    name = next(f for f in files if f.endswith(".npz"))
    for choice in ("mnist", "test", "domain", "w1", "n500", "none", "abc123"):
        assert choice in name  # the key names every protocol choice
