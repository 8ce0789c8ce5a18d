"""The `inception` backbone: TTUR's frozen Inception graph, the network of published FIDs.

Protocol (TTUR's fid.py, which pytorch-fid and clean-fid's `legacy_tensorflow`
mode reproduce): `classify_image_graph_def.pb` from the inception-2015-12-05
archive; images as float32 (N, H, W, 3) in [0, 255] fed at `ExpandDims:0`;
the graph resizes them to 299x299 itself (its TF 1 `ResizeBilinear`, no
half-pixel centres: nothing is resized before it); features are `pool_3`
(2048-d, squeezed). genbench's [0, 1] images are scaled by 255 and rounded to
8-bit levels (what a sample saved as PNG and read back by those tools holds;
real images come back exactly), grayscale is tiled to 3 channels. Logits, for
the Inception Score, are `pool_3` times the `softmax/logits/MatMul` weights
(1008 classes, no bias), as the original Inception Score code computes them.
How the graph runs in TF 2 (own graph and session; dynamic batch): frozen_graph.py.

Weights (`--inception-weights`), in order: a PATH to the .tgz archive or to the
.pb (tests pass a small stand-in graph with the same interface this way); the cache
`$GENBENCH_CACHE/inception/classify_image_graph_def.pb`; a download of the
archive into that cache (not with $GENBENCH_OFFLINE set), written atomically.
No checksum of the file is published by TTUR or pytorch-fid, so a download is
verified by its structure: the tensors above, 2048 features, 1008 classes and
a 299x299 resize. Every file is checked from its bytes before training
(graph_def.py reads them without TensorFlow); rows record the file's sha256
prefix (`inception_weights_id`) and the whole protocol (`fid_protocol`).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
import tempfile
import urllib.request
import zlib
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from suite.common.atomic import write_atomic
from suite.common.errors import GenbenchError
from suite.common.messages import is_file, quote_path
from suite.data.catalog import OFFLINE_ENV, ImageData
from suite.metrics.backbones.base import (
    LOGITS_IMAGENET,
    BackboneColumns,
    BackboneInfo,
    FeatureExtractor,
)
from suite.metrics.backbones.graph_def import (
    GraphNode,
    const_ints,
    const_shape,
    input_node_name,
    read_graph_nodes,
    resolve_identity,
)
from suite.metrics.cache import cache_root, file_lock
from suite.store import schema

GRAPH_FILE = "classify_image_graph_def.pb"
ARCHIVE_URL = "http://download.tensorflow.org/models/image/imagenet/inception-2015-12-05.tgz"
CACHE_DIR = "inception"
INPUT_TENSOR = "ExpandDims:0"
FEATURE_TENSOR = "pool_3:0"
LOGITS_MATMUL = "softmax/logits/MatMul"
RANDOM_WEIGHTS = "random"  # inception_keras only: the graph has no random stand-in
CHUNK = 50  # images per run (TTUR's batch size)
DOWNLOAD_TIMEOUT_S = 60
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
RESIZE_METHOD = "graph bilinear 299"


@dataclass(frozen=True)
class GraphShape:
    """What the structural check read from a graph file."""

    feature_dim: int
    classes: int
    resize: tuple[int, int]


STANDARD_SHAPE = GraphShape(feature_dim=2048, classes=1008, resize=(299, 299))


@dataclass(frozen=True)
class GraphFile:
    """A checked graph: its bytes, where they came from, their sha256 and shape."""

    data: bytes = field(repr=False)
    source: str
    sha256: str
    shape: GraphShape

    @property
    def weights_id(self) -> str:
        return f"{GRAPH_FILE}:{self.sha256[:12]}"


def cached_graph_path() -> Path:
    return cache_root() / CACHE_DIR / GRAPH_FILE


def fix_hint() -> str:
    return (f"download {ARCHIVE_URL} and pass --inception-weights PATH (the .tgz, or the "
            f"{GRAPH_FILE} inside it), or put {GRAPH_FILE} into {cached_graph_path().parent}/ "
            "($GENBENCH_CACHE/inception); or drop inception from eval.backbones (`backbones: "
            "[domain]` works offline)")


def graph_error(source: str, problem: str) -> GenbenchError:
    return GenbenchError(f"Inception graph {quote_path(source)}: {problem}\n  fix: {fix_hint()}")


def reads_from(nodes: dict[str, GraphNode], tensor: str, target: str) -> bool:
    """Whether `tensor` is node `target`'s output, or a pass-through chain of it."""
    node = nodes.get(input_node_name(tensor))
    for _ in range(8):
        if node is None:
            return False
        if node.name == target:
            return True
        if node.op not in ("Reshape", "Squeeze", "Identity") or not node.inputs:
            return False
        node = nodes.get(input_node_name(node.inputs[0]))
    return False


def inspect_graph(data: bytes, source: str) -> GraphShape:
    """The graph's shape, or GenbenchError naming what is missing (no TensorFlow needed)."""
    if data.startswith(HDF5_SIGNATURE):
        raise graph_error(source, "an HDF5 file (Keras weights?), not a TensorFlow GraphDef; "
                                  "Keras InceptionV3 weights belong to the inception_keras "
                                  "backbone")
    try:
        nodes = read_graph_nodes(data)
    except ValueError as exc:
        raise graph_error(source, f"not a TensorFlow GraphDef ({exc})") from None
    wanted = [input_node_name(INPUT_TENSOR), input_node_name(FEATURE_TENSOR), LOGITS_MATMUL]
    missing = [name for name in wanted if name not in nodes]
    resizes = [n for n in nodes.values() if n.op == "ResizeBilinear" and n.inputs
               and input_node_name(n.inputs[0]) == input_node_name(INPUT_TENSOR)]
    if not resizes:
        missing.append(f"a ResizeBilinear of {input_node_name(INPUT_TENSOR)}")
    if missing:
        raise graph_error(source, f"a GraphDef without the tensors FID reads (missing: "
                                  f"{', '.join(missing)}); not {GRAPH_FILE}")
    matmul = nodes[LOGITS_MATMUL]
    try:
        if matmul.op != "MatMul" or len(matmul.inputs) != 2:
            raise ValueError(f"{LOGITS_MATMUL} is a {matmul.op} with {len(matmul.inputs)} inputs")
        if not reads_from(nodes, matmul.inputs[0], input_node_name(FEATURE_TENSOR)):
            raise ValueError(f"{LOGITS_MATMUL} does not read {input_node_name(FEATURE_TENSOR)}")
        weights = resolve_identity(nodes, matmul.inputs[1])
        if weights is None:
            raise ValueError(f"{LOGITS_MATMUL} weights {matmul.inputs[1]!r} are missing")
        shape = const_shape(weights)
        size = const_ints(nodes[input_node_name(resizes[0].inputs[1])])
        if len(shape) != 2 or min(shape) < 1 or len(size) != 2 or min(size) < 1:
            raise ValueError(f"weights of shape {shape} and resize to {size}")
    except (ValueError, KeyError, IndexError) as exc:
        raise graph_error(source, f"not the graph FID needs ({exc})") from None
    return GraphShape(feature_dim=shape[0], classes=shape[1], resize=(size[0], size[1]))


def read_graph_bytes(path: Path, source: str) -> bytes:
    """The .pb's bytes, from the file itself or from inside a (gzipped) tar archive."""
    try:
        if not tarfile.is_tarfile(path):
            return path.read_bytes()
        with tarfile.open(path) as archive:
            members = [m for m in archive.getmembers() if m.isfile()]
            member = next((m for m in members if Path(m.name).name == GRAPH_FILE), None)
            handle = archive.extractfile(member) if member is not None else None
            if handle is None:
                names = ", ".join(Path(m.name).name for m in members[:5]) or "no files"
                raise graph_error(source, f"an archive without {GRAPH_FILE} (holds {names})")
            return handle.read()
    except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
        raise graph_error(source, f"unreadable ({type(exc).__name__}: {exc})") from None


def checked_graph(data: bytes, source: str, standard: bool = False) -> GraphFile:
    shape = inspect_graph(data, source)
    if standard and shape != STANDARD_SHAPE:
        raise graph_error(source, f"not the 2015-12-05 graph: {shape}, expected {STANDARD_SHAPE}")
    return GraphFile(data, source, hashlib.sha256(data).hexdigest(), shape)


def download_graph(destination: Path, url: str) -> None:
    """Fetch the archive, take the .pb out, verify it, write it atomically to `destination`."""
    with file_lock(destination):  # concurrent processes download once
        if destination.is_file():
            return
        with tempfile.TemporaryDirectory(prefix=".download-", dir=destination.parent) as tmp:
            archive = Path(tmp) / Path(url).name
            with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response, \
                    open(archive, "wb") as out:
                shutil.copyfileobj(response, out)
            graph = checked_graph(read_graph_bytes(archive, url), url, standard=True)
            write_atomic(destination, lambda path: path.write_bytes(graph.data))


def locate_graph(option: str | None, download: bool = True, url: str | None = None) -> GraphFile:
    """The checked graph `option` asks for (see the module docstring), or GenbenchError."""
    if option == RANDOM_WEIGHTS:
        raise graph_error(option, "`random` gives inception_keras random weights; the standard "
                                  "graph has none (pass the .pb or the .tgz)")
    if option:
        path = Path(option).expanduser()
        if not is_file(path):
            raise graph_error(option, f"no such file (--inception-weights takes {GRAPH_FILE}, "
                                      "the inception-2015-12-05 .tgz holding it)")
        return checked_graph(read_graph_bytes(path, option), option)
    path = cached_graph_path()
    if not path.is_file():
        problem = None
        if not download:
            problem = "not in the cache"
        elif os.environ.get(OFFLINE_ENV, "") not in ("", "0"):
            problem = f"not in the cache, and downloads are disabled by ${OFFLINE_ENV}"
        else:
            try:
                download_graph(path, url or ARCHIVE_URL)
            except GenbenchError as exc:
                problem = f"the download is not the graph: {exc}".split("\n")[0]
            except Exception as exc:  # offline, DNS, proxy, refused: one actionable message
                problem = f"download failed: {type(exc).__name__}: {str(exc)[:200]}"
        if problem is not None:
            raise GenbenchError(f"Inception graph {GRAPH_FILE} not found ({problem}).\n"
                                f"  looked for: {path}\n  address: {url or ARCHIVE_URL}\n"
                                f"  fix: {fix_hint()}")
    return checked_graph(read_graph_bytes(path, str(path)), str(path))


def check_graph_weights(option: str | None) -> None:
    """Preflight: the graph `option` names is there (downloaded now if allowed) and whole."""
    locate_graph(option, download=True)


def images_to_graph_input(images: np.ndarray) -> np.ndarray:
    """[0, 1] images (N, H, W, 1 or 3) -> float32 8-bit levels in [0, 255], 3 channels."""
    x = np.asarray(images, dtype=np.float32)
    if x.ndim != 4 or x.shape[-1] not in (1, 3):
        raise ValueError(f"need images (N, H, W, 1 or 3); got shape {x.shape}")
    x = np.rint(np.clip(x, 0.0, 1.0) * 255.0)
    return np.repeat(x, 3, axis=-1) if x.shape[-1] == 1 else x


class GraphFeatureExtractor(FeatureExtractor):
    """The frozen graph as a FeatureExtractor: pool_3 features and the 1008 IS logits."""

    def __init__(self, graph: GraphFile) -> None:
        from suite.metrics.backbones.frozen_graph import FrozenGraph

        self.info, self.weights_id = BACKBONE, graph.weights_id
        self.frozen = FrozenGraph(graph.data, INPUT_TENSOR, [FEATURE_TENSOR])
        self.graph_file = replace(graph, data=b"")  # TensorFlow holds the graph now
        shape = self.frozen.static_shape(0)
        if len(shape) != 4 or shape[1:] != (1, 1, graph.shape.feature_dim):
            raise graph_error(graph.source, f"{FEATURE_TENSOR} has shape {shape}, expected "
                                            f"(batch, 1, 1, {graph.shape.feature_dim})")
        self.softmax_weights = self.frozen.op_input(LOGITS_MATMUL, 1).astype(np.float64)
        self.feature_dim, self.has_logits = graph.shape.feature_dim, True

    @property
    def resize_method(self) -> str:
        height, width = self.graph_file.shape.resize
        return f"graph bilinear {height}" + (f"x{width}" if width != height else "")

    def images_to_outputs(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        x = images_to_graph_input(images)
        parts = [self.frozen.run(x[start:start + CHUNK])[0].reshape(-1, self.feature_dim)
                 for start in range(0, len(x), CHUNK)]
        features = np.concatenate(parts) if parts else np.zeros((0, self.feature_dim), "f4")
        return features, features.astype(np.float64) @ self.softmax_weights

    def describe_protocol(self, n_real: int, n_fake: int, split: str) -> str:
        return (f"{GRAPH_FILE} sha256:{self.graph_file.sha256[:12]}; {self.resize_method}; "
                f"pool_3 {self.feature_dim}-d; n_real={n_real}; n_fake={n_fake}; split={split}")


def build_graph_extractor(data: ImageData | None, weights: str | None) -> FeatureExtractor:
    """The backbone's factory (`data` is unused: one graph serves all datasets)."""
    return GraphFeatureExtractor(locate_graph(weights, download=True))


BACKBONE = BackboneInfo(
    name="inception",
    build=build_graph_extractor,
    columns=BackboneColumns(
        fd=schema.FID_INCEPTION, kid=schema.KID_INCEPTION, kid_std=schema.KID_INCEPTION_STD,
        precision=schema.PRECISION_INCEPTION, recall=schema.RECALL_INCEPTION,
        weights_id=schema.INCEPTION_WEIGHTS_ID, inception_score=schema.INCEPTION_SCORE,
        protocol=schema.FID_PROTOCOL),
    logits=LOGITS_IMAGENET,
    needs_labels=False,
    per_dataset=False,
    takes_weights=True,
    check_weights=check_graph_weights,
    resize_method=RESIZE_METHOD,
    protocol=("[0, 1] images -> 8-bit levels in [0, 255], grayscale tiled to RGB, fed at "
              f"{INPUT_TENSOR} of TTUR's {GRAPH_FILE} (inception-2015-12-05), which resizes to "
              f"299 itself (TF1 ResizeBilinear); features: pool_3 (2048-d); logits: pool_3 x "
              f"{LOGITS_MATMUL} weights (1008 classes, no bias, as the original Inception "
              "Score code)"),
)
