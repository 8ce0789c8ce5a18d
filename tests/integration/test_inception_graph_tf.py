"""The `inception` backbone end to end with TensorFlow: a small GraphDef with the 2015 graph's
tensor names and quirks (standin_graph.py: DecodeJpeg -> ExpandDims with batch-1 shapes, its own
ResizeBilinear, BatchNormWithGlobalNormalization at an old GraphDef version, pool_3, a
hard-coded [1, d] reshape, softmax/logits/MatMul) goes through import, batching, features,
logits, cached reference statistics, a real `genbench run` row, and preflight errors.

The reference for "the features are TTUR's" is the graph run the TF 1 way: the whole GraphDef
imported into a graph and fed one image at a time at ExpandDims:0 (its own static shape, no
patching), reading pool_3:0 and softmax/logits/MatMul:0 (pool_3 times the softmax weights,
no bias: the original Inception Score's logits)."""

from __future__ import annotations

import hashlib
import io
import math
import tarfile

import numpy as np
import pytest
from standin_graph import build_standin_graph

from suite.common.errors import GenbenchError
from suite.metrics.backbones import inception_graph as ig
from suite.metrics.backbones.graph_def import const_ints, const_shape, read_graph_nodes
from suite.metrics.backbones.registry import clear_backbone_cache, get_backbone, prepare_eval
from suite.metrics.cache import clear_loaded_references
from suite.store import schema
from suite.sweep.spec import EvalSpec, Trial
from suite.trial.evaluate import evaluate_milestone

TINY = {"seed": 1, "image_size": 16, "feature_dim": 64, "classes": 10}


@pytest.fixture(scope="module")
def tiny_graph(tmp_path_factory):
    path = tmp_path_factory.mktemp("graph") / "tiny_graph.pb"
    path.write_bytes(build_standin_graph(**TINY))
    return path


def parse(data: bytes):
    import tensorflow as tf

    graph_def = tf.compat.v1.GraphDef()
    graph_def.ParseFromString(data)
    return graph_def


def ttur_reference(data: bytes, images_uint8: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """pool_3 features and MatMul logits, image by image, as TF 1 code ran the graph."""
    import tensorflow as tf

    graph = tf.Graph()
    with graph.as_default():
        tf.graph_util.import_graph_def(parse(data), name="FID_Inception_Net")
    features, logits = [], []
    with tf.compat.v1.Session(graph=graph) as session:
        for image in images_uint8.astype(np.float32):
            image = np.repeat(image, 3, axis=-1) if image.shape[-1] == 1 else image
            f, lg = session.run(["FID_Inception_Net/pool_3:0",
                                 "FID_Inception_Net/softmax/logits/MatMul:0"],
                                {"FID_Inception_Net/ExpandDims:0": image[None]})
            features.append(f.reshape(-1))
            logits.append(lg.reshape(-1))
    return np.stack(features), np.stack(logits)


def make_trial(backbones=("inception",), n_samples: int = 200, model: str = "dcgan") -> Trial:
    return Trial(sweep="t", index=0, dataset="mnist", model=model, upsampling="nearest",
                 latent_dim=8, epochs=1, milestones=(1,), seed=0, batch_size=32, lr=2e-4,
                 lr_scaling="none", kernel_size=5, workers=1, max_train_images=None,
                 eval=EvalSpec(n_samples=n_samples, backbones=tuple(backbones), batch_size=64))


# ------------------------------------------------------------------------ the graph itself


def test_graph_reader_agrees_with_tensorflow(tiny_graph) -> None:
    import tensorflow as tf

    for data in (tiny_graph.read_bytes(), build_standin_graph()):
        graph_def, nodes = parse(data), read_graph_nodes(data)
        assert list(nodes) == [n.name for n in graph_def.node]
        for node in graph_def.node:
            assert (nodes[node.name].op, nodes[node.name].inputs) == (node.op, tuple(node.input))
            if node.op == "Const":
                value = tf.make_ndarray(node.attr["value"].tensor)
                assert const_shape(nodes[node.name]) == value.shape, node.name
                if value.dtype == np.int32:
                    assert const_ints(nodes[node.name]) == tuple(value.ravel().tolist())
    assert ig.inspect_graph(build_standin_graph(), "random") == ig.STANDARD_SHAPE


def test_features_and_logits_are_the_graphs_own_for_any_batch(tiny_graph, mnist,
                                                              data_dir) -> None:
    from suite.data.catalog import load_dataset

    data = tiny_graph.read_bytes()
    extractor = ig.GraphFeatureExtractor(ig.locate_graph(str(tiny_graph)))
    assert extractor.frozen.static_shape(0) == (None, 1, 1, 64)  # the batch is dynamic
    assert extractor.frozen.producer == 5  # the file's old GraphDef version is kept
    expand_dims = next(n for n in parse(data).node if n.name == "ExpandDims")
    assert expand_dims.attr["_output_shapes"].list.shape[0].dim[0].size == 1  # as exported
    cifar = load_dataset("cifar10", str(data_dir))
    for images in (mnist.x_eval[:120], cifar.x_eval[:7]):  # 120: chunks of 50, 50 and 20
        features, logits = extractor.images_to_outputs(images.astype(np.float32) / 255.0)
        expected_features, expected_logits = ttur_reference(data, images)
        assert features.shape == (len(images), 64) and logits.shape == (len(images), 10)
        np.testing.assert_allclose(features, expected_features, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(logits, expected_logits, rtol=1e-4, atol=1e-5)
        assert features.std() > 0 and np.abs(features[0] - features[1]).max() > 0
        alone = extractor.images_to_features(images[-1:].astype(np.float32) / 255.0)
        np.testing.assert_allclose(alone[0], features[-1], rtol=1e-5, atol=1e-6)


def test_a_tf2_function_cannot_run_the_2015_graphs_ops(tiny_graph) -> None:
    """Why FrozenGraph runs a Session: in a wrapped function the old batch norm is refused."""
    import tensorflow as tf

    graph_def = parse(tiny_graph.read_bytes())

    def imported(images):
        return tf.graph_util.import_graph_def(graph_def, input_map={"ExpandDims:0": images},
                                              return_elements=["pool_3:0"], name="")[0]

    wrapped = tf.compat.v1.wrap_function(imported, [tf.TensorSpec((None, None, None, 3))])
    with pytest.raises(tf.errors.UnimplementedError, match="BatchNormWithGlobalNormalization"):
        wrapped(tf.zeros((2, 16, 16, 3)))


def test_standin_graph_file_runs_and_is_repeatable(tmp_path, monkeypatch, mnist) -> None:
    monkeypatch.setenv("GENBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("GENBENCH_OFFLINE", "1")
    standin = tmp_path / "standin.pb"
    standin.write_bytes(build_standin_graph())  # the full-size interface, seeded weights
    prepare_eval([make_trial()], {"mnist": mnist}, str(standin), "s.yaml")
    extractor = get_backbone("inception", mnist, str(standin))
    assert extractor.weights_id.startswith("classify_image_graph_def.pb:")
    assert extractor.resize_method == "graph bilinear 299"
    images = mnist.x_eval[:6].astype(np.float32) / 255.0
    features, logits = extractor.images_to_outputs(images)
    assert features.shape == (6, 2048) and logits.shape == (6, 1008)
    assert np.isfinite(features).all() and np.isfinite(logits).all()
    clear_backbone_cache()
    rebuilt = get_backbone("inception", mnist, str(standin))
    assert rebuilt is not extractor
    np.testing.assert_array_equal(rebuilt.images_to_features(images), features)
    assert not (tmp_path / "cache").exists()  # nothing looked up, nothing downloaded


def test_random_is_refused_for_the_graph(mnist) -> None:
    with pytest.raises(GenbenchError, match="inception_keras random weights"):
        get_backbone("inception", mnist, "random")


# ---------------------------------------------------------------- evaluation and the run


class RealDigits:
    """A perfect generator: unseen real training digits."""

    def __init__(self, data) -> None:
        self.images, self.taken = data.x_train, 0

    def generate(self, noise, labels):
        batch = self.images[self.taken:self.taken + len(noise)]
        self.taken += len(noise)
        return batch.astype(np.float32) / 255.0


class Noise:
    def generate(self, noise, labels):
        return np.random.default_rng(len(noise)).random((len(noise), 28, 28, 1), np.float32)


def test_reference_statistics_are_cached_per_graph(tmp_path, monkeypatch, tiny_graph,
                                                   mnist) -> None:
    monkeypatch.setenv("GENBENCH_CACHE", str(tmp_path / "cache"))
    clear_loaded_references()
    backbones = {"inception": get_backbone("inception", mnist, str(tiny_graph))}
    trial = make_trial()
    real = evaluate_milestone(RealDigits(mnist), mnist, trial, backbones, epoch=1)
    noise = evaluate_milestone(Noise(), mnist, trial, backbones, epoch=1)
    assert 0 < real[schema.FID_INCEPTION] < 0.5 * noise[schema.FID_INCEPTION]
    assert real[schema.RECALL_INCEPTION] > noise[schema.RECALL_INCEPTION]
    files = list((tmp_path / "cache" / "reference").glob("*.npz"))
    assert len(files) == 1
    digest = hashlib.sha256(tiny_graph.read_bytes()).hexdigest()[:12]
    for choice in ("mnist", "inception", digest, "n200", "graph_bilinear_16"):
        assert choice in files[0].name, choice
    before = files[0].stat().st_mtime_ns
    clear_loaded_references()  # a new process: the statistics come from the file
    again = evaluate_milestone(Noise(), mnist, trial, backbones, epoch=1)
    assert again == noise and files[0].stat().st_mtime_ns == before


SWEEP = """
name: graph
dataset: mnist
grid:
  model: [dcgan]
fixed:
  upsampling: nearest
  latent_dim: 8
  batch_size: 32
  epochs: 1
  max_train_images: 256
eval: {backbones: [inception], n_samples: 64}
"""


def test_genbench_run_records_the_graph_protocol(tmp_path, monkeypatch, data_dir, write_sweep,
                                                 tiny_graph, mnist) -> None:
    from analysis.load import load_results
    from suite.cli.main import main

    monkeypatch.setenv("GENBENCH_OFFLINE", "1")
    out = tmp_path / "out"
    assert main(["run", str(write_sweep(SWEEP)), "--out", str(out), "--data-dir", str(data_dir),
                 "--inception-weights", str(tiny_graph), "--quiet"]) == 0
    row = load_results(out / "graph", deduplicate=False).iloc[0]
    assert row[schema.STATUS] == schema.STATUS_OK
    assert row[schema.FID_INCEPTION] > 0 and row[schema.KID_INCEPTION_STD] >= 0
    assert math.isfinite(row[schema.KID_INCEPTION])
    assert 0 <= row[schema.PRECISION_INCEPTION] <= 1 and 0 <= row[schema.RECALL_INCEPTION] <= 1
    assert 1.0 <= row[schema.INCEPTION_SCORE] <= 10.0
    digest = hashlib.sha256(tiny_graph.read_bytes()).hexdigest()[:12]
    assert row[schema.INCEPTION_WEIGHTS_ID] == f"classify_image_graph_def.pb:{digest}"
    assert row[schema.FID_PROTOCOL] == (
        f"classify_image_graph_def.pb sha256:{digest}; graph bilinear 16; pool_3 64-d; "
        f"n_real=64; n_fake=64; split={mnist.eval_split}")
    assert row[schema.RESIZE_METHOD] == "inception: graph bilinear 16"
    assert math.isnan(row[schema.FID_INCEPTION_KERAS])  # the other network made no number


def tgz_with(tmp_path, members: dict[str, bytes]):
    path = tmp_path / "inception-2015-12-05.tgz"
    with tarfile.open(path, "w:gz") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path


def test_genbench_run_stops_before_training_without_a_usable_graph(
        tmp_path, monkeypatch, data_dir, write_sweep, tiny_graph, capsys) -> None:
    from suite.cli.main import main

    monkeypatch.setenv("GENBENCH_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.setenv("GENBENCH_OFFLINE", "1")
    graph_def = parse(tiny_graph.read_bytes())
    del graph_def.node[[n.name for n in graph_def.node].index("softmax/logits/MatMul")]
    no_logits = tmp_path / "no_logits.pb"
    no_logits.write_bytes(graph_def.SerializeToString())
    no_pb = tgz_with(tmp_path, {"imagenet_synset_to_human_label_map.txt": b"n01440764 tench"})
    sweep = write_sweep(SWEEP)
    out = tmp_path / "out"
    for option, expected in (
            (None, ["classify_image_graph_def.pb not found", ig.ARCHIVE_URL,
                    "--inception-weights PATH", str(tmp_path / "empty-cache" / "inception")]),
            (str(no_logits), ["no_logits.pb': a GraphDef without the tensors FID reads "
                              "(missing: softmax/logits/MatMul)"]),
            (str(no_pb), ["an archive without classify_image_graph_def.pb"])):
        flags = ["--inception-weights", option] if option else []
        assert main(["run", str(sweep), "--out", str(out), "--data-dir", str(data_dir),
                     "--quiet", *flags]) == 2
        err = capsys.readouterr().err
        assert "eval.backbones: inception: " in err and "Traceback" not in err
        for part in expected:
            assert part in err, (part, err)
        assert not (out / "graph" / "trials").exists()  # nothing started
