"""Readers of the original file formats, each held to what its header declares.

IDX (MNIST's format, gzip or plain), CIFAR-10 binary batches, and .npz (a user's own
arrays, or Keras' mnist.npz). Each reader refuses a file whose header disagrees with its
bytes, or declares more than the size limit, before allocating anything (the rules are
in suite/data/rules.py). Readers raise ValueError naming the file (the loader adds a fix)
or DataError for label values. Nothing is unpickled; no TensorFlow.
"""

from __future__ import annotations

import gzip
import math
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from suite.common.errors import DataError
from suite.common.messages import shorten, show_path
from suite.data.rules import (
    MAX_CLASSES,
    READ_ERRORS,
    RESAVE_FIX,
    check_byte_budget,
    check_label_values,
    checked_npz,
)

CIFAR_RECORD = 3073  # 1 label byte + 32*32*3 pixel bytes
CIFAR_CLASSES = 10
REPLACE_FIX = "replace it with an intact copy, or point --data-dir (or $GENBENCH_DATA) elsewhere"


@dataclass(frozen=True)
class Splits:
    """What a reader found: a test split, and a train split when there is one."""

    x_test: np.ndarray
    y_test: np.ndarray | None
    x_train: np.ndarray | None = None
    y_train: np.ndarray | None = None
    source: str = ""


def with_channel(x: np.ndarray) -> np.ndarray:
    return x[..., None] if x.ndim == 3 else x


# --- IDX ----------------------------------------------------------------------------------


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (gzip or plain) of unsigned bytes: MNIST's own format.

    The header's dimensions are checked against the size limit before anything is
    allocated, and against the bytes that follow, so no file can exhaust memory.
    """
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            head = f.read(4)
            if len(head) < 4 or head[:3] != b"\x00\x00\x08" or not 1 <= head[3] <= 4:
                raise ValueError(f"{path}: not an unsigned-byte IDX file of 1 to 4 dimensions")
            raw_dims = f.read(4 * head[3])
            if len(raw_dims) < 4 * head[3]:
                raise ValueError(f"{path}: the IDX header is truncated")
            dims = [int.from_bytes(raw_dims[i: i + 4], "big") for i in range(0, len(raw_dims), 4)]
            count = math.prod(dims)
            check_byte_budget(count, str(path), f"the IDX header declares {shorten(dims)} =")
            data = f.read(count + 1)  # one byte more: a longer file is refused too
    except (OSError, EOFError, zlib.error) as exc:
        raise ValueError(f"{path}: cannot be read as IDX ({shorten(exc)})") from None
    if len(data) != count:
        held = "more" if len(data) > count else str(len(data))
        raise ValueError(f"{path}: IDX header says {shorten(dims)} ({count} bytes) but holds "
                         f"{held} bytes")
    return np.frombuffer(data, dtype=np.uint8, count=count).reshape(dims)


def find_idx(directory: Path, stem: str) -> Path | None:
    for name in (f"{stem}.gz", stem):
        if (directory / name).is_file():
            return directory / name
    return None


def read_idx_pair(images: Path, labels: Path | None,
                  classes: int) -> tuple[np.ndarray, np.ndarray | None]:
    """Images (N, H, W, 1) and their labels: one per image, each one of `classes`."""
    x = read_idx(images)
    if x.ndim != 3 or not len(x):
        raise ValueError(f"{images}: holds an array of shape {shorten(x.shape)}; expected "
                         "N >= 1 images (N, H, W)")
    if labels is None:
        return x[..., None], None
    y = read_idx(labels)
    if y.shape != (len(x),):
        raise ValueError(f"{labels}: holds {shorten(y.shape)} labels for the {len(x)} images "
                         f"of {images.name}")
    return x[..., None], check_label_values(y, str(labels), "labels", classes, REPLACE_FIX)


def read_idx_dir(directory: Path, classes: int) -> Splits | None:
    test_x, test_y = find_idx(directory, "t10k-images-idx3-ubyte"), find_idx(
        directory, "t10k-labels-idx1-ubyte")
    if test_x is None:
        return None
    train_x, train_y = find_idx(directory, "train-images-idx3-ubyte"), find_idx(
        directory, "train-labels-idx1-ubyte")
    x_test, y_test = read_idx_pair(test_x, test_y, classes)
    x_train, y_train = read_idx_pair(train_x, train_y, classes) if train_x else (None, None)
    return Splits(x_test=x_test, y_test=y_test, x_train=x_train, y_train=y_train,
                  source=str(directory))


# --- CIFAR-10 -------------------------------------------------------------------------------


def read_cifar_batches(paths: list[Path]) -> tuple[np.ndarray, np.ndarray]:
    """Read CIFAR-10 binary batches: records of 1 label byte + 3072 CHW pixel bytes."""
    sizes = [p.stat().st_size for p in paths]
    for p, size in zip(paths, sizes, strict=True):
        if size == 0 or size % CIFAR_RECORD:
            raise ValueError(f"{p}: size {size} is not a multiple of a 3073-byte CIFAR record")
    where = str(paths[0]) if len(paths) == 1 else f"{paths[0].parent} ({len(paths)} batches)"
    check_byte_budget(sum(sizes), where, "the CIFAR batches hold")
    raw = np.concatenate([np.fromfile(p, dtype=np.uint8) for p in paths]).reshape(-1, CIFAR_RECORD)
    images = raw[:, 1:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(images), raw[:, 0].astype(np.int64)


def read_cifar_dir(folder: Path) -> Splits:
    """test_batch.bin, and data_batch_*.bin when present; labels must be classes 0..9."""
    x_test, y_test = read_cifar_batches([folder / "test_batch.bin"])
    check_label_values(y_test, str(folder / "test_batch.bin"), "labels", CIFAR_CLASSES,
                       REPLACE_FIX)
    train_files = sorted(folder.glob("data_batch_*.bin"))
    x_train, y_train = read_cifar_batches(train_files) if train_files else (None, None)
    if y_train is not None:
        check_label_values(y_train, str(folder), "data_batch labels", CIFAR_CLASSES,
                           REPLACE_FIX)
    return Splits(x_test=x_test, y_test=y_test, x_train=x_train, y_train=y_train,
                  source=str(folder))


# --- npz --------------------------------------------------------------------------------------


def read_npz(path: Path) -> dict[str, np.ndarray]:
    """The arrays checked_npz accepted, each read from the very zip member it checked."""
    expected = checked_npz(path)
    where = show_path(path)
    out: dict[str, np.ndarray] = {}
    key = next(iter(expected))
    try:
        with zipfile.ZipFile(path) as archive:
            for key, spec in expected.items():
                with archive.open(spec.member) as f:
                    array = np.lib.format.read_array(f, allow_pickle=False)
                    if f.read(1) or array.shape != spec.shape or array.dtype != spec.dtype:
                        raise ValueError("it changed since its header was checked")
                out[key] = array
    except READ_ERRORS as exc:  # e.g. a bad CRC: headers alone cannot tell
        raise DataError(f"{where}: `{key}` cannot be read ({shorten(exc)})\n  fix: {RESAVE_FIX}"
                        ) from None
    return out


def read_user_npz(path: Path, max_classes: int = MAX_CLASSES) -> Splits:
    """A user's npz (or Keras' mnist.npz) after every header rule; label values checked here."""
    arrays = read_npz(path)
    y = {k: check_label_values(arrays[k], str(path), k, max_classes)
         for k in ("y", "y_train", "y_test") if k in arrays}
    if "x_test" in arrays:
        return Splits(x_test=with_channel(arrays["x_test"]), y_test=y.get("y_test"),
                      x_train=with_channel(arrays["x_train"]), y_train=y.get("y_train"),
                      source=str(path))
    key = "x" if "x" in arrays else "x_train"
    return Splits(x_test=with_channel(arrays[key]), y_test=y.get("y" if key == "x" else "y_train"),
                  source=str(path))
