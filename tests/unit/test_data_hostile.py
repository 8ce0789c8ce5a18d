"""Hostile data files: every rule is checked before training, with one short message.

Rules readable from headers refuse a sweep when it is parsed (`genbench plan` exits 2);
rules that need the values (label range, corrupt bytes) refuse it when the data is loaded
(`genbench run --preflight-only` exits 2). Every message names the file, the array and a
fix. Real files only, nothing trains, no TensorFlow.
"""

from __future__ import annotations

import gzip
import io
import zipfile
from pathlib import Path

import numpy as np
import pytest

from suite.cli.main import main
from suite.common.errors import GenbenchError, SpecError
from suite.data.catalog import check_dataset_name, check_npz, is_labelled_dataset, load_dataset
from suite.sweep.loader import load_sweep

LIMIT_ENV = "GENBENCH_MAX_DATA_BYTES"


# --- building hostile files ---------------------------------------------------------------


def images(n: int, size: int = 16, channels: int | None = None, dtype=np.uint8) -> np.ndarray:
    shape = (n, size, size) if channels is None else (n, size, size, channels)
    return np.random.default_rng(n).integers(0, 256, shape).astype(dtype)


def labels(n: int, classes: int = 4, dtype=np.int64) -> np.ndarray:
    return (np.arange(n) % classes).astype(dtype)


def save(tmp_path: Path, name: str = "data.npz", **arrays) -> Path:
    path = tmp_path / name
    np.savez(path, **arrays)
    return path


def npy_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=False)
    return buf.getvalue()


def npy_header(shape: tuple[int, ...], descr: str = "|u1") -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buf, {"descr": descr, "fortran_order": False, "shape": shape})
    return buf.getvalue()


def write_zip(path: Path, members: dict[str, bytes], compress: bool = False) -> Path:
    method = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    with zipfile.ZipFile(path, "w", method) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return path


# --- how a refusal must look ------------------------------------------------------------------


def assert_one_short_message(message: str, path: Path, key: str | None) -> None:
    assert str(path) in message, message
    if key is not None:
        assert f"`{key}`" in message, message
    assert "fix:" in message, message
    assert "Traceback" not in message and len(message.splitlines()) <= 3, message
    assert len(message) < 700, message


def sweep_for(write_sweep, npz: Path, model: str = "vae") -> Path:
    return write_sweep(f"name: t\ndataset: 'npz:{npz}'\nfixed: {{model: {model}, batch_size: 4}}\n")


def assert_refused_when_parsed(write_sweep, capsys, npz: Path, key: str | None,
                               model: str = "vae") -> None:
    """The spec and `genbench plan` refuse it, and so does load_dataset."""
    sweep = sweep_for(write_sweep, npz, model)
    with pytest.raises(SpecError) as info:
        load_sweep(str(sweep))
    assert_one_short_message(str(info.value), npz, key)
    assert info.value.field == "dataset"
    capsys.readouterr()
    assert main(["plan", str(sweep)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("genbench: error: ") and str(sweep) in err
    assert_one_short_message(err, npz, key)
    load_dataset.cache_clear()
    with pytest.raises(GenbenchError) as loaded:
        load_dataset(f"npz:{npz}")
    assert_one_short_message(str(loaded.value), npz, key)


def assert_refused_when_loaded(write_sweep, capsys, tmp_path: Path, npz: Path, key: str,
                               model: str = "vae") -> None:
    """Headers are fine (the sweep parses); loading refuses it, before any training."""
    load_dataset.cache_clear()
    with pytest.raises(GenbenchError) as info:
        load_dataset(f"npz:{npz}")
    assert_one_short_message(str(info.value), npz, key)
    sweep = sweep_for(write_sweep, npz, model)
    load_sweep(str(sweep))
    out = tmp_path / "out"
    capsys.readouterr()
    assert main(["run", str(sweep), "--preflight-only", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("genbench: error: ")
    assert_one_short_message(err, npz, key)
    assert_nothing_written(out)


def assert_nothing_written(out: Path) -> None:
    """Preflight may create the results directory; no trial may have written into it."""
    assert not [p for p in out.rglob("*") if p.is_file()]


# --- labels: length, shape, dtype (headers) and range (values) ---------------------------------


@pytest.mark.parametrize("y, key", [
    (labels(15), "y"),                                   # shorter than x: was a traceback
    (labels(25), "y"),                                   # longer: trained on wrong labels
    (labels(60).reshape(20, 3), "y"),                    # (N, 3): 60 labels for 20 images
    (labels(20).reshape(20, 1, 1), "y"),
    (np.int64(3), "y"),                                  # a scalar
    (labels(20).astype(np.float32), "y"),
    (labels(20) % 2 == 0, "y"),                          # bool
    (labels(20).astype(np.complex64), "y"),
])
def test_bad_label_headers_are_refused_when_parsed(y, key, tmp_path, write_sweep, capsys):
    npz = save(tmp_path, x=images(20), y=y)
    assert_refused_when_parsed(write_sweep, capsys, npz, key, model="cgan")


def test_split_labels_must_match_their_split(tmp_path, write_sweep, capsys):
    npz = save(tmp_path, x_train=images(20), y_train=labels(19), x_test=images(8),
               y_test=labels(8))
    assert_refused_when_parsed(write_sweep, capsys, npz, "y_train")
    npz = save(tmp_path, "b.npz", x_train=images(20), y_train=labels(20), x_test=images(8),
               y_test=labels(8).reshape(4, 2))
    assert_refused_when_parsed(write_sweep, capsys, npz, "y_test")


@pytest.mark.parametrize("arrays, key", [
    ({"x": images(20), "y": labels(20) - 3}, "y"),                            # negative
    ({"x": images(20), "y": labels(20) + 50_000}, "y"),                       # absurd class count
    ({"x": images(20), "y": labels(20, dtype=np.uint64) + 2**63}, "y"),       # wraps in int64
    ({"x_train": images(20), "y_train": labels(20), "x_test": images(8),
      "y_test": -labels(8) - 1}, "y_test"),
])
def test_label_values_are_checked_before_training(arrays, key, tmp_path, write_sweep, capsys):
    npz = save(tmp_path, **arrays)
    assert_refused_when_loaded(write_sweep, capsys, tmp_path, npz, key, model="cgan")


def test_column_labels_and_unsigned_labels_are_fine(tmp_path):
    npz = save(tmp_path, x=images(20), y=labels(20, dtype=np.uint8).reshape(20, 1))
    data = load_dataset(f"npz:{npz}")
    assert data.y_train.shape == (16,) and data.y_train.dtype == np.int64
    assert data.num_classes == 4 and is_labelled_dataset(f"npz:{npz}")


# --- empty and too-small data ------------------------------------------------------------------


@pytest.mark.parametrize("arrays, key", [
    ({"x": images(0), "y": labels(0)}, "x"),         # was an IndexError traceback
    ({"x": images(0)}, "x"),
    ({"x": images(1)}, "x"),                         # a holdout needs two images
    ({"x_train": images(0), "x_test": images(4)}, "x_train"),
    ({"x_train": images(8), "x_test": images(0, channels=1)}, "x_test"),
])
def test_empty_data_is_refused_when_parsed(arrays, key, tmp_path, write_sweep, capsys):
    npz = save(tmp_path, **arrays)
    assert_refused_when_parsed(write_sweep, capsys, npz, key)


# --- image shapes ----------------------------------------------------------------------------


@pytest.mark.parametrize("x", [
    images(10, channels=5),
    images(10, channels=2),
    np.zeros((10, 16, 20), np.uint8),                # not square
    images(10, size=4),                              # too small
    images(10, size=18),                             # not a multiple of 4
    np.zeros((10, 16), np.uint8),
    np.zeros((2, 3, 16, 16, 1), np.uint8),
    images(10, dtype=np.int16),
])
def test_images_models_cannot_take_are_refused_when_parsed(x, tmp_path, write_sweep, capsys):
    npz = save(tmp_path, x=x)
    assert_refused_when_parsed(write_sweep, capsys, npz, "x")


# --- mismatched splits and layouts -----------------------------------------------------------


@pytest.mark.parametrize("arrays, key", [
    ({"x_train": images(8, 16), "x_test": images(4, 20)}, "x_test"),          # other size
    ({"x_train": images(8, 16, 1), "x_test": images(4, 16, 3)}, "x_test"),    # other channels
    ({"x_train": images(8), "x_test": images(4, dtype=np.int16)}, "x_test"),  # other dtype
    ({"x_train": images(8), "y_train": labels(8), "x_test": images(4)}, "y_test"),
    ({"x_train": images(8), "x_test": images(4), "y_test": labels(4)}, "y_train"),
    ({"x_train": images(8), "x": images(4)}, "x"),                            # stray x
    ({"x_test": images(8)}, "x_train"),
    ({"x_train": images(8), "x_test": images(4), "y": labels(8)}, "y"),
    ({"x": images(8), "labels": labels(8)}, "labels"),                        # unknown: refused
])
def test_mismatched_splits_are_refused_when_parsed(arrays, key, tmp_path, write_sweep, capsys):
    npz = save(tmp_path, **arrays)
    assert_refused_when_parsed(write_sweep, capsys, npz, key)


def test_splits_with_and_without_a_channel_axis_agree(tmp_path):
    npz = save(tmp_path, x_train=images(8), y_train=labels(8), x_test=images(4, channels=1),
               y_test=labels(4))
    data = load_dataset(f"npz:{npz}")
    assert data.image_shape == (16, 16, 1) and (data.train_split, data.eval_split) == (
        "train", "test")


# --- size bombs -----------------------------------------------------------------------------


def test_header_declaring_terabytes_is_refused_without_allocating(tmp_path, write_sweep, capsys):
    # 9.5 TiB declared in a file of a few hundred bytes: was a MemoryError traceback.
    npz = write_zip(tmp_path / "huge.npz",
                    {"x.npy": npy_header((10_000_000, 1024, 1024)) + bytes(256)})
    assert_refused_when_parsed(write_sweep, capsys, npz, "x")
    npz = write_zip(tmp_path / "huge-y.npz", {"x.npy": npy_bytes(images(20)),
                                              "y.npy": npy_header((2**40,), "<i8")})
    assert_refused_when_parsed(write_sweep, capsys, npz, "y")


def test_compressed_bombs_over_the_limit_are_refused(tmp_path, write_sweep, capsys, monkeypatch):
    monkeypatch.setenv(LIMIT_ENV, "1000000")
    npz = tmp_path / "bomb.npz"
    np.savez_compressed(npz, x=np.zeros((2000, 32, 32), np.uint8))  # 2 MB in a few KB
    assert npz.stat().st_size < 20_000
    assert_refused_when_parsed(write_sweep, capsys, npz, "x")
    # Each split under the limit, both together over it.
    npz = tmp_path / "pair.npz"
    np.savez_compressed(npz, x_train=np.zeros((600, 32, 32), np.uint8),
                        x_test=np.zeros((600, 32, 32), np.uint8))
    assert_refused_when_parsed(write_sweep, capsys, npz, "x_test")


def test_lying_headers_are_refused_when_parsed(tmp_path, write_sweep, capsys):
    # The npy header declares 100 images; the member holds 2 (a truncated array).
    npz = write_zip(tmp_path / "short.npz",
                    {"x.npy": npy_header((100, 16, 16)) + images(2).tobytes()})
    assert_refused_when_parsed(write_sweep, capsys, npz, "x")
    # ... or declares fewer bytes than it holds.
    npz = write_zip(tmp_path / "long.npz",
                    {"x.npy": npy_header((4, 16, 16)) + images(20).tobytes()}, compress=True)
    assert_refused_when_parsed(write_sweep, capsys, npz, "x")


def test_a_bad_limit_setting_is_explained(tmp_path, monkeypatch):
    npz = save(tmp_path, x=images(8))
    monkeypatch.setenv(LIMIT_ENV, "lots")
    with pytest.raises(ValueError, match=LIMIT_ENV):
        check_dataset_name(f"npz:{npz}")


# --- corrupt files ----------------------------------------------------------------------------


def test_files_that_are_no_npz_are_refused_when_parsed(tmp_path, write_sweep, capsys):
    text = tmp_path / "notes.npz"
    text.write_text("x,y\n1,2\n")
    assert_refused_when_parsed(write_sweep, capsys, text, None)
    lone = tmp_path / "lone.npz"
    lone.write_bytes(npy_bytes(images(8)))  # np.save, not np.savez
    assert_refused_when_parsed(write_sweep, capsys, lone, None)
    cut = save(tmp_path, "cut.npz", x=images(8))
    cut.write_bytes(cut.read_bytes()[:-30])  # the zip directory is gone
    assert_refused_when_parsed(write_sweep, capsys, cut, None)


def test_zip_members_that_are_no_arrays_are_refused_when_parsed(tmp_path, write_sweep, capsys):
    npz = write_zip(tmp_path / "readme.npz", {"README.txt": b"my images"})
    assert_refused_when_parsed(write_sweep, capsys, npz, "README.txt")
    npz = write_zip(tmp_path / "garbage.npz", {"x.npy": b"\x93NUMPY garbage"})
    assert_refused_when_parsed(write_sweep, capsys, npz, "x")
    npz = write_zip(tmp_path / "twice.npz", {"x.npy": npy_bytes(images(8))})
    with zipfile.ZipFile(npz, "a") as z, pytest.warns(UserWarning, match="Duplicate"):
        z.writestr("x.npy", npy_bytes(images(8, size=12)))
    assert_refused_when_parsed(write_sweep, capsys, npz, "x")


def test_object_arrays_are_refused_without_unpickling(tmp_path, write_sweep, capsys):
    objects = np.array([{"a": 1}] * 20, dtype=object)
    npz = tmp_path / "obj.npz"
    np.savez(npz, x=images(20), y=objects)  # np.savez pickles objects
    assert_refused_when_parsed(write_sweep, capsys, npz, "y", model="cgan")
    npz = tmp_path / "objx.npz"
    np.savez(npz, x=objects)
    assert_refused_when_parsed(write_sweep, capsys, npz, "x")


def test_corrupt_bytes_are_caught_when_loaded_and_headers_stay_cheap(
        tmp_path, write_sweep, capsys):
    npz = save(tmp_path, x=images(20), y=labels(20))
    raw = bytearray(npz.read_bytes())
    at = raw.find(images(20).tobytes()[:64]) + 1000  # inside x's pixel bytes
    raw[at] ^= 0xFF
    npz.write_bytes(bytes(raw))
    # Parsing reads headers only, so it cannot notice; loading checks the CRC.
    check_dataset_name(f"npz:{npz}")
    assert_refused_when_loaded(write_sweep, capsys, tmp_path, npz, "x")


def test_header_checks_are_repeated_cheaply(tmp_path):
    npz = save(tmp_path, x=images(20), y=labels(20))
    first = check_npz(npz)
    first.clear()  # a caller's copy: the next answer is whole again
    assert set(check_npz(npz)) == {"x", "y"}


# --- the built-in formats' readers ---------------------------------------------------------------


def idx_bytes(array: np.ndarray) -> bytes:
    dims = b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return b"\x00\x00\x08" + bytes([array.ndim]) + dims + array.astype(np.uint8).tobytes()


def mnist_dir(tmp_path: Path, x: bytes, y: bytes) -> Path:
    (tmp_path / "mnist").mkdir()
    (tmp_path / "mnist" / "t10k-images-idx3-ubyte").write_bytes(x)
    (tmp_path / "mnist" / "t10k-labels-idx1-ubyte").write_bytes(y)
    return tmp_path


def assert_dataset_refused(name: str, data_dir: Path, file: str, capsys, write_sweep) -> None:
    load_dataset.cache_clear()
    with pytest.raises(GenbenchError) as info:
        load_dataset(name, str(data_dir))
    message = str(info.value)
    assert file in message and "fix:" in message and len(message) < 700, message
    sweep = write_sweep(f"name: t\ndataset: {name}\nfixed: {{model: vae, batch_size: 4}}\n")
    capsys.readouterr()
    assert main(["run", str(sweep), "--preflight-only", "--data-dir", str(data_dir),
                 "--out", str(data_dir / "out")]) == 2
    err = capsys.readouterr().err
    assert file in err and "Traceback" not in err
    assert_nothing_written(data_dir / "out")


@pytest.mark.parametrize("x, y, file", [
    # Header declares 10^6 x 10^4 x 10^4 images in 800 bytes.
    (idx_bytes(images(2))[:4] + b"".join(d.to_bytes(4, "big") for d in (10**6, 10**4, 10**4))
     + bytes(800), idx_bytes(labels(2)), "t10k-images-idx3-ubyte"),
    (b"", idx_bytes(labels(20)), "t10k-images-idx3-ubyte"),                   # empty file
    (idx_bytes(images(20, 28)), idx_bytes(labels(17)), "t10k-labels-idx1-ubyte"),  # 17 of 20
    (idx_bytes(images(20, 28)), idx_bytes(labels(20) + 200), "t10k-labels-idx1-ubyte"),
    (idx_bytes(images(20, 28))[:-5], idx_bytes(labels(20)), "t10k-images-idx3-ubyte"),
], ids=["absurd-dims", "empty-file", "labels-short", "labels-out-of-range", "truncated"])
def test_broken_idx_files_are_explained(x, y, file, tmp_path, capsys, write_sweep):
    assert_dataset_refused("mnist", mnist_dir(tmp_path, x, y), file, capsys, write_sweep)


def test_gzip_bomb_idx_is_refused(tmp_path, capsys, write_sweep, monkeypatch):
    monkeypatch.setenv(LIMIT_ENV, "1000000")
    (tmp_path / "mnist").mkdir()
    with gzip.open(tmp_path / "mnist" / "t10k-images-idx3-ubyte.gz", "wb") as f:
        f.write(idx_bytes(np.zeros((3000, 28, 28), np.uint8)))  # 2.4 MB in a few KB
    (tmp_path / "mnist" / "t10k-labels-idx1-ubyte").write_bytes(idx_bytes(labels(3000)))
    assert_dataset_refused("mnist", tmp_path, "t10k-images-idx3-ubyte.gz", capsys, write_sweep)


def test_broken_cifar_batches_are_explained(tmp_path, capsys, write_sweep, monkeypatch):
    folder = tmp_path / "cifar-10-batches-bin"
    folder.mkdir()
    (folder / "test_batch.bin").write_bytes(bytes(3073 * 3 + 7))
    assert_dataset_refused("cifar10", tmp_path, "test_batch.bin", capsys, write_sweep)
    (folder / "test_batch.bin").write_bytes(bytes(3073 * 400))
    monkeypatch.setenv(LIMIT_ENV, "1000000")
    assert_dataset_refused("cifar10", tmp_path, "test_batch.bin", capsys, write_sweep)
