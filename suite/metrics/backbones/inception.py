"""The `inception_keras` backbone: Keras InceptionV3 with ImageNet weights.

Not the published FID protocol (that is the `inception` backbone,
inception_graph.py: TTUR's frozen 2015 graph): Keras' weights are a later
1000-class training and the resize differs, so its numbers are genbench's
own, comparable only with each other. Features are the 2048-d global average
pool; logits are the 1000-way ImageNet classifier (Keras' top) and feed
`inception_score_keras`. Images are resized to 299x299 with
`tf.image.resize(bilinear, antialias=True)` (antialiasing matters when
downsampling; clean-fid showed aliased resizing shifts FID), grayscale is
tiled to 3 channels, and pixels are scaled with InceptionV3's
`preprocess_input` ([0, 255] -> [-1, 1]).

Weights, in order: `--inception-weights PATH` (a Keras weights file, HDF5,
with or without the top; checked before training); `--inception-weights
random` (seeded random weights, no download: for tests, recorded as weights
id "random"); the Keras cache (`$KERAS_HOME/models/`, default
~/.keras/models/) holding the file keras.applications downloads; a
download into that cache (not attempted when $GENBENCH_OFFLINE is set).
Without the top (the `_notop` file) there are no logits, and
`inception_score_keras` is NaN.

No TensorFlow is imported until a network is built: locating weights is a
preflight check (`check_inception_weights`). `BACKBONE` (at the end) describes
this backbone to the registry and to evaluation.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path

from suite.common.errors import GenbenchError
from suite.common.messages import is_file, quote
from suite.data.catalog import OFFLINE_ENV, ImageData
from suite.metrics.backbones.base import LOGITS_IMAGENET, BackboneColumns, BackboneInfo
from suite.metrics.backbones.extractor import (
    FeatureExtractor,
    KerasFeatureExtractor,
    seeded_construction,
)
from suite.metrics.cache import file_to_hash
from suite.store import schema

RANDOM_WEIGHTS = "random"
RANDOM_SEED = 0
IMAGE_SIZE = 299
RESIZE_METHOD = f"tf.image.resize bilinear antialias {IMAGE_SIZE}x{IMAGE_SIZE}"
CHUNK = 32  # images per forward pass: ~25 MB of activations each at 299x299

# The files keras.applications.InceptionV3(weights="imagenet") downloads into its cache.
TOP_FILE = "inception_v3_weights_tf_dim_ordering_tf_kernels.h5"
NOTOP_FILE = "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5"
ORIGIN = "https://storage.googleapis.com/tensorflow/keras-applications/inception_v3/"
TOP_MD5 = "9a0d58056eeedaa3f26cb7ebd46da564"
DOWNLOAD_TIMEOUT_S = 30
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"  # every Keras .h5 weights file starts with it


@dataclass(frozen=True)
class InceptionWeights:
    path: Path | None  # None: random weights
    weights_id: str


def keras_home() -> Path:
    """Keras' cache root as keras itself picks it, but read now (tests change $KERAS_HOME)."""
    if os.environ.get("KERAS_HOME"):
        return Path(os.environ["KERAS_HOME"]).expanduser()
    home = Path("~").expanduser()
    return (home if os.access(home, os.W_OK) else Path("/tmp")) / ".keras"


def keras_models_dir() -> Path:
    return keras_home() / "models"


_FILE_IDS: dict[tuple[str, int, int], str] = {}


def weights_file_id(path: Path) -> str:
    """`<file name>:<sha256 prefix>`; hashed once per process per file version."""
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _FILE_IDS:
        _FILE_IDS[key] = file_to_hash(path)[:12]
    return f"{path.name}:{_FILE_IDS[key]}"


def download_inception_weights(directory: Path) -> Path:
    """Fetch the top weights into `directory` (Keras' cache) as keras.applications would."""
    import keras

    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)
    try:
        return Path(keras.utils.get_file(TOP_FILE, ORIGIN + TOP_FILE, cache_subdir="models",
                                         cache_dir=str(directory.parent), file_hash=TOP_MD5))
    finally:
        socket.setdefaulttimeout(previous)


def missing_weights_message(looked: list[Path], problem: str) -> str:
    directory = keras_models_dir()
    return (
        f"Inception weights not found ({problem}).\n"
        f"  looked for: {', '.join(str(p) for p in looked)}\n"
        f"  fix: put {TOP_FILE} (from {ORIGIN}{TOP_FILE}; or the {NOTOP_FILE} variant, which "
        f"gives no inception_score) into {directory}/ (the Keras cache; $KERAS_HOME/models when "
        "KERAS_HOME is set), or pass --inception-weights PATH, or drop inception_keras from "
        "eval.backbones (`backbones: [domain]` works offline); --inception-weights random runs "
        "the pipeline with meaningless random weights, for tests only")


def check_hdf5(path: Path, option: str) -> None:
    """Keras weights are HDF5: anything else (e.g. the graph the `inception` backbone takes,
    given to a sweep that also uses this one) fails here, before training, not mid-sweep."""
    with open(path, "rb") as f:
        head = f.read(len(HDF5_SIGNATURE))
    if head != HDF5_SIGNATURE:
        raise GenbenchError(
            f"--inception-weights {quote(option)}: not a Keras weights file (HDF5), which "
            "inception_keras needs. Fix: give it Keras InceptionV3 weights such as "
            f"{TOP_FILE}; a TensorFlow graph (.pb/.tgz) is for the `inception` backbone, so a "
            "sweep using both leaves the flag out and each finds its own weights in its cache")


def locate_inception_weights(option: str | None, download: bool = False) -> InceptionWeights:
    """Find the weights `option` asks for (see the module docstring), or raise GenbenchError."""
    if option == RANDOM_WEIGHTS:
        return InceptionWeights(None, RANDOM_WEIGHTS)
    if option:
        path = Path(option).expanduser()
        if not is_file(path):
            raise GenbenchError(f"--inception-weights {quote(option)}: no such file. Fix: give "
                                f"the path of a Keras InceptionV3 weights file such as "
                                f"{TOP_FILE}, or `random` for tests")
        check_hdf5(path, option)
        return InceptionWeights(path, weights_file_id(path))
    directory = keras_models_dir()
    looked = [directory / TOP_FILE, directory / NOTOP_FILE]
    for path in looked:
        if path.is_file():
            return InceptionWeights(path, weights_file_id(path))
    if not download:
        raise GenbenchError(missing_weights_message(looked, "not in the Keras cache"))
    try:
        if os.environ.get(OFFLINE_ENV, "") not in ("", "0"):
            raise RuntimeError(f"downloads are disabled by ${OFFLINE_ENV}")
        path = download_inception_weights(directory)
    except Exception as exc:  # offline, DNS, proxy, hash mismatch: one actionable message
        raise GenbenchError(missing_weights_message(
            looked, f"download failed: {type(exc).__name__}: {exc}")) from None
    return InceptionWeights(path, weights_file_id(path))


def check_inception_weights(option: str | None) -> None:
    """Preflight: the weights `option` names exist (downloaded now if needed and allowed)."""
    locate_inception_weights(option, download=True)


def build_inception_network(weights: InceptionWeights):
    """InceptionV3 with outputs (pool features, logits), or (pool features) for notop files.

    Weights go into the plain keras.applications network, exactly as its own
    `weights="imagenet"` path loads them; the two-output model is wrapped after.
    """
    import keras

    def build(include_top: bool):
        with seeded_construction(RANDOM_SEED):
            if include_top:
                return keras.applications.InceptionV3(include_top=True, weights=None,
                                                      classifier_activation=None)
            return keras.applications.InceptionV3(include_top=False, weights=None,
                                                  pooling="avg")

    def with_outputs(net, include_top: bool):
        outputs = [net.get_layer("avg_pool").output, net.output] if include_top else [net.output]
        return keras.Model(net.input, outputs, name="inception_v3_features")

    if weights.path is None:
        return with_outputs(build(True), True)
    errors = []
    # Which variant a file holds is found by loading it: weights files carry no reliable tag.
    for include_top in (False, True) if "notop" in weights.path.name else (True, False):
        net = build(include_top)
        try:
            net.load_weights(weights.path)
        except Exception as exc:  # the other variant: the layer lists differ
            errors.append(f"{'with' if include_top else 'without'} top: "
                          f"{type(exc).__name__}: {str(exc)[:300]}")
            continue
        return with_outputs(net, include_top)
    raise GenbenchError(f"--inception-weights {weights.path}: not InceptionV3 weights that "
                        "Keras can load (" + "; ".join(errors) + ")")


def inception_preprocess(images):
    """[0, 1] images -> InceptionV3 input: antialiased bilinear resize to 299, 3 channels."""
    import keras
    import tensorflow as tf

    x = tf.image.resize(images, (IMAGE_SIZE, IMAGE_SIZE), method="bilinear", antialias=True)
    if x.shape[-1] == 1:
        x = tf.tile(x, (1, 1, 1, 3))
    return keras.applications.inception_v3.preprocess_input(x * 255.0)


def build_inception_extractor(data: ImageData | None, weights: str | None) -> FeatureExtractor:
    """The backbone's factory (`data` is unused: one network serves all datasets)."""
    located = locate_inception_weights(weights, download=True)
    return KerasFeatureExtractor(BACKBONE, build_inception_network(located),
                                 inception_preprocess, weights_id=located.weights_id, chunk=CHUNK)


BACKBONE = BackboneInfo(
    name="inception_keras",
    build=build_inception_extractor,
    columns=BackboneColumns(
        fd=schema.FID_INCEPTION_KERAS, kid=schema.KID_INCEPTION_KERAS,
        kid_std=schema.KID_INCEPTION_KERAS_STD, precision=schema.PRECISION_INCEPTION_KERAS,
        recall=schema.RECALL_INCEPTION_KERAS, weights_id=schema.INCEPTION_KERAS_WEIGHTS_ID,
        inception_score=schema.INCEPTION_SCORE_KERAS),
    logits=LOGITS_IMAGENET,
    needs_labels=False,
    per_dataset=False,
    takes_weights=True,
    check_weights=check_inception_weights,
    resize_method=RESIZE_METHOD,
    protocol=(f"[0, 1] images -> {RESIZE_METHOD}, grayscale tiled to RGB, preprocess_input "
              "-> Keras InceptionV3 (ImageNet weights); features: avg_pool (2048-d); logits: "
              "1000 ImageNet classes (none with notop weights)"),
)
