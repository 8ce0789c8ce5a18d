"""The `inception` backbone's graph file, without TensorFlow: reading a GraphDef's structure,
finding the file (option, .tgz, cache, download over loopback HTTP), and the errors that stop
a sweep before training. Graphs here are real protocol-buffer bytes, written field by field
(tests/integration/test_inception_graph.py runs TensorFlow-made graphs through the same code
and checks this reader against TensorFlow's parser)."""

from __future__ import annotations

import http.server
import io
import struct
import tarfile
import threading
from pathlib import Path

import numpy as np
import pytest

from suite.common.errors import GenbenchError, SpecError
from suite.metrics.backbones import inception_graph as ig
from suite.metrics.backbones.graph_def import (
    const_ints,
    const_shape,
    read_graph_nodes,
    resolve_identity,
)

DT_FLOAT, DT_INT32 = 1, 3

# ------------------------------------------------------------ protocol-buffer bytes, by hand


def varint(value: int) -> bytes:
    value &= (1 << 64) - 1
    out = bytearray()
    while True:
        out.append((value & 0x7F) | (0x80 if value > 0x7F else 0))
        value >>= 7
        if not value:
            return bytes(out)


def field(number: int, payload: bytes | int) -> bytes:
    if isinstance(payload, int):
        return varint(number << 3) + varint(payload)
    return varint(number << 3 | 2) + varint(len(payload)) + payload


def tensor(dtype: int, shape: tuple[int, ...], ints: list[int] | None = None,
           packed: bool = False, content: bool = True) -> bytes:
    dims = b"".join(field(2, field(1, size)) for size in shape)
    out = field(1, dtype) + field(2, dims)
    if ints is not None and content:
        out += field(4, struct.pack(f"<{len(ints)}i", *ints))
    elif ints is not None and packed:
        out += field(7, b"".join(varint(v) for v in ints))
    elif ints is not None:
        out += b"".join(field(7, v) for v in ints)
    return out


def node(name: str, op: str, inputs: tuple[str, ...] = (), value: bytes | None = None) -> bytes:
    out = field(1, name.encode()) + field(2, op.encode())
    out += b"".join(field(3, i.encode()) for i in inputs)
    out += field(5, field(1, b"T") + field(2, field(6, DT_FLOAT)))
    if value is not None:
        out += field(5, field(1, b"value") + field(2, field(8, value)))
    return field(1, out)


def graph_bytes(feature_dim: int = 2048, classes: int = 1008, size: int = 299,
                drop: tuple[str, ...] = (), size_encoding: str = "content",
                weights_via_identity: bool = False, matmul_reads: str = "pool_3/_reshape") -> bytes:
    """The 2015 graph's interface as NodeDefs (weights have a shape but no values)."""
    size_tensor = (tensor(DT_INT32, (2,), [size], packed=True, content=False)
                   if size_encoding == "splat" else
                   tensor(DT_INT32, (2,), [size, size], packed=size_encoding == "packed",
                          content=size_encoding == "content"))
    weights = "softmax/weights/read" if weights_via_identity else "softmax/weights"
    nodes = {
        "DecodeJpeg/contents": ("Placeholder", (), None),
        "DecodeJpeg": ("DecodeJpeg", ("DecodeJpeg/contents",), None),
        "Cast": ("Cast", ("DecodeJpeg",), None),
        "ExpandDims/dim": ("Const", (), tensor(DT_INT32, (), [0], content=False)),
        "ExpandDims": ("ExpandDims", ("Cast", "ExpandDims/dim"), None),
        "ResizeBilinear/size": ("Const", (), size_tensor),
        "ResizeBilinear": ("ResizeBilinear", ("ExpandDims", "ResizeBilinear/size"), None),
        "pool_3": ("AvgPool", ("ResizeBilinear",), None),
        "pool_3/_reshape/shape": ("Const", (), tensor(DT_INT32, (2,), [1, feature_dim])),
        "pool_3/_reshape": ("Reshape", ("pool_3", "pool_3/_reshape/shape"), None),
        "softmax/weights": ("Const", (), tensor(DT_FLOAT, (feature_dim, classes))),
        "softmax/weights/read": ("Identity", ("softmax/weights",), None),
        "softmax/logits/MatMul": ("MatMul", (matmul_reads, weights), None),
    }
    return b"".join(node(name, op, inputs, value) for name, (op, inputs, value) in nodes.items()
                    if name not in drop)


def write_tgz(path: Path, members: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path


@pytest.fixture
def empty_cache(tmp_path, monkeypatch) -> Path:
    cache = tmp_path / "cache"
    monkeypatch.setenv("GENBENCH_CACHE", str(cache))
    monkeypatch.delenv("GENBENCH_OFFLINE", raising=False)
    return cache


class ArchiveServer:
    """A loopback HTTP server that serves one archive and counts the requests."""

    def __init__(self, body: bytes | None) -> None:
        self.body, self.requests = body, 0
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (the http.server hook's name)
                outer.requests += 1
                if outer.body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(outer.body)))
                self.end_headers()
                self.wfile.write(outer.body)

            def log_message(self, *args) -> None:
                pass

        self.server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_port}/inception-2015-12-05.tgz"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def serve():
    servers: list[ArchiveServer] = []

    def start(body: bytes | None) -> ArchiveServer:
        servers.append(ArchiveServer(body))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


# ------------------------------------------------------------------------------- reading


@pytest.mark.parametrize("encoding", ["content", "packed", "unpacked", "splat"])
def test_graph_structure_is_read_from_the_bytes(encoding) -> None:
    data = graph_bytes(size_encoding=encoding, weights_via_identity=encoding == "packed")
    nodes = read_graph_nodes(data)
    assert nodes["ResizeBilinear"].inputs == ("ExpandDims", "ResizeBilinear/size")
    assert const_ints(nodes["ResizeBilinear/size"]) == (299, 299)
    assert const_ints(nodes["pool_3/_reshape/shape"]) == (1, 2048)
    assert const_shape(resolve_identity(nodes, "softmax/weights/read")) == (2048, 1008)
    assert ig.inspect_graph(data, "g.pb") == ig.STANDARD_SHAPE
    assert ig.inspect_graph(graph_bytes(64, 10, 16), "g.pb") == ig.GraphShape(64, 10, (16, 16))


@pytest.mark.parametrize(("data", "expected"), [
    (graph_bytes(drop=("pool_3",)), "missing: pool_3"),
    (graph_bytes(drop=("softmax/logits/MatMul",)), "missing: softmax/logits/MatMul"),
    (graph_bytes(drop=("ExpandDims",)), "(missing: ExpandDims)"),
    (graph_bytes(drop=("ResizeBilinear",)), "missing: a ResizeBilinear of ExpandDims"),
    (graph_bytes(matmul_reads="Cast"), "does not read pool_3"),
    (graph_bytes(drop=("softmax/weights",)), "weights 'softmax/weights' are missing"),
    (graph_bytes()[:-3], "not a TensorFlow GraphDef (truncated"),
    (b"", "not a TensorFlow GraphDef (no named nodes)"),
    (b"\xff" * 64, "not a TensorFlow GraphDef"),
    (b"\x89HDF\r\n\x1a\n" + bytes(100), "HDF5 file (Keras weights?)"),
])
def test_files_that_are_not_the_graph_are_named_with_what_is_wrong(data, expected) -> None:
    with pytest.raises(GenbenchError) as info:
        ig.inspect_graph(data, "/data/my_graph.pb")
    message = str(info.value)
    assert message.startswith("Inception graph '/data/my_graph.pb': ") and expected in message
    assert ig.ARCHIVE_URL in message and "--inception-weights" in message
    assert len(message.splitlines()) == 2  # the problem, then one fix line


# -------------------------------------------------------------------------- finding it


def test_a_pb_and_the_tgz_holding_it_give_the_same_graph_id(tmp_path, empty_cache) -> None:
    data = graph_bytes()
    pb = tmp_path / "classify_image_graph_def.pb"
    pb.write_bytes(data)
    tgz = write_tgz(tmp_path / "inception-2015-12-05.tgz", {
        "LICENSE": b"...", "imagenet_synset_to_human_label_map.txt": b"n01 fish",
        "./classify_image_graph_def.pb": data})
    from_pb, from_tgz = ig.locate_graph(str(pb)), ig.locate_graph(str(tgz))
    assert from_pb.data == from_tgz.data == data and from_pb.shape == ig.STANDARD_SHAPE
    import hashlib

    digest = hashlib.sha256(data).hexdigest()
    assert from_pb.weights_id == from_tgz.weights_id == f"classify_image_graph_def.pb:{digest[:12]}"
    assert not empty_cache.exists()  # a given file is used where it is, not copied


def test_archives_without_the_graph_and_missing_files_are_refused(tmp_path, empty_cache) -> None:
    tgz = write_tgz(tmp_path / "other.tgz", {"model/weights.bin": b"x", "README": b"y"})
    with pytest.raises(GenbenchError, match=r"an archive without classify_image_graph_def.pb "
                                            r"\(holds weights.bin, README\)"):
        ig.locate_graph(str(tgz))
    broken = tmp_path / "cut.tgz"
    broken.write_bytes(tgz.read_bytes()[:40])
    with pytest.raises(GenbenchError, match="cut.tgz"):
        ig.locate_graph(str(broken))
    with pytest.raises(GenbenchError, match="'/no/such/graph.pb': no such file"):
        ig.locate_graph("/no/such/graph.pb")
    long_name = "/tmp/" + "x" * 500 + ".pb"
    with pytest.raises(GenbenchError) as info:
        ig.locate_graph(long_name)
    first_line = str(info.value).splitlines()[0]
    assert "x.pb'" in first_line and len(first_line) < 250  # quoted briefly, keeping its end


def test_the_cache_is_used_when_no_file_is_given(empty_cache) -> None:
    cached = empty_cache / "inception" / "classify_image_graph_def.pb"
    cached.parent.mkdir(parents=True)
    cached.write_bytes(graph_bytes())
    assert ig.cached_graph_path() == cached
    assert ig.locate_graph(None).source == str(cached)
    ig.check_graph_weights(None)


def test_offline_without_the_file_fails_naming_file_address_and_flag(
        empty_cache, monkeypatch, serve) -> None:
    server = serve(write_tgz(empty_cache.parent / "a.tgz",
                             {"classify_image_graph_def.pb": graph_bytes()}).read_bytes())
    monkeypatch.setenv("GENBENCH_OFFLINE", "1")
    with pytest.raises(GenbenchError) as info:
        ig.locate_graph(None, url=server.url)
    message = str(info.value)
    assert server.requests == 0  # not even tried
    for part in ("classify_image_graph_def.pb not found", "$GENBENCH_OFFLINE",
                 str(empty_cache / "inception" / "classify_image_graph_def.pb"), server.url,
                 "--inception-weights PATH", "backbones: [domain]"):
        assert part in message, part
    with pytest.raises(GenbenchError, match="not in the cache"):
        ig.locate_graph(None, download=False)


def test_a_download_is_verified_and_written_atomically_once(empty_cache, serve) -> None:
    data = graph_bytes()
    server = serve(write_tgz(empty_cache.parent / "a.tgz",
                             {"inception/classify_image_graph_def.pb": data}).read_bytes())
    graph = ig.locate_graph(None, url=server.url)
    cached = empty_cache / "inception" / "classify_image_graph_def.pb"
    assert graph.data == data and cached.read_bytes() == data and graph.source == str(cached)
    assert sorted(p.name for p in cached.parent.iterdir()) == [cached.name,
                                                              cached.name + ".lock"]
    ig.locate_graph(None, url=server.url)
    assert server.requests == 1  # the second process reads the cache


@pytest.mark.parametrize(("archive", "expected"), [
    ({"classify_image_graph_def.pb": graph_bytes(64, 10, 16)}, "not the 2015-12-05 graph"),
    ({"classify_image_graph_def.pb": graph_bytes(drop=("pool_3",))}, "missing: pool_3"),
    ({"something_else.pb": graph_bytes()}, "an archive without"),
    (None, "download failed: HTTPError"),
])
def test_a_bad_download_leaves_nothing_behind(empty_cache, serve, archive, expected) -> None:
    body = None if archive is None else write_tgz(empty_cache.parent / "a.tgz",
                                                  archive).read_bytes()
    server = serve(body)
    with pytest.raises(GenbenchError) as info:
        ig.locate_graph(None, url=server.url)
    assert expected in str(info.value) and server.url in str(info.value)
    directory = empty_cache / "inception"
    assert not [p for p in directory.iterdir() if not p.name.endswith(".lock")]


def test_preflight_names_the_sweep_the_backbone_and_the_file(tmp_path, mnist) -> None:
    from suite.metrics.backbones.registry import check_eval_setup
    from suite.sweep.spec import EvalSpec, Trial

    trial = Trial(sweep="t", index=0, dataset="mnist", model="dcgan", upsampling="nearest",
                  latent_dim=8, epochs=1, milestones=(1,), seed=0, batch_size=32, lr=2e-4,
                  lr_scaling="none", kernel_size=5, workers=1, max_train_images=None,
                  eval=EvalSpec(n_samples=64, backbones=("inception",), batch_size=32))
    bad = tmp_path / "graph.pb"
    bad.write_bytes(graph_bytes(drop=("pool_3",)))
    with pytest.raises(SpecError) as info:
        check_eval_setup([trial], {"mnist": mnist}, str(bad), source="s.yaml")
    message = str(info.value)
    assert message.startswith("s.yaml: eval.backbones: inception: Inception graph '")
    assert "/graph.pb': a GraphDef without the tensors FID reads (missing: pool_3)" in message
    good = tmp_path / "good.pb"
    good.write_bytes(graph_bytes())
    check_eval_setup([trial], {"mnist": mnist}, str(good), source="s.yaml")
    with pytest.raises(SpecError, match="inception_keras random weights"):
        check_eval_setup([trial], {"mnist": mnist}, "random", source="s.yaml")


# -------------------------------------------------------------------------- the input


def test_images_become_8_bit_levels_with_three_channels() -> None:
    pixels = np.arange(256, dtype=np.uint8).reshape(1, 16, 16, 1)
    x = ig.images_to_graph_input(pixels.astype(np.float32) / 255.0)
    assert x.dtype == np.float32 and x.shape == (1, 16, 16, 3)
    np.testing.assert_array_equal(x[..., 0], pixels[..., 0])  # real images come back exactly
    np.testing.assert_array_equal(x[..., 0], x[..., 2])
    fake = np.array([0.0, 0.5, 0.999, 1.2, -0.1], np.float32).reshape(1, 1, 5, 1)
    assert ig.images_to_graph_input(fake)[0, 0, :, 0].tolist() == [0, 128, 255, 255, 0]
    colour = np.random.default_rng(0).random((2, 8, 8, 3), dtype=np.float32)
    assert ig.images_to_graph_input(colour).shape == (2, 8, 8, 3)
    for shape in ((8, 8, 3), (1, 8, 8, 2)):
        with pytest.raises(ValueError, match="need images"):
            ig.images_to_graph_input(np.zeros(shape, np.float32))
