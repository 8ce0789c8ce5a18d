"""Datasets: the DATASETS registry and readers for the original file formats.

Images come back as uint8 arrays (N, H, W, C) with integer labels. Sources, in
order: a data dir (`--data-dir`, else `$GENBENCH_DATA`, else `../shared/data`
when it exists) holding the original formats (MNIST / Fashion-MNIST IDX `.gz`,
CIFAR-10 binary batches, Keras' `mnist.npz`), then `keras.datasets` (its cache,
or a download). `npz:PATH` loads a user's own arrays. Nothing is unpickled.

No TensorFlow is imported here unless a download is needed.
"""

from __future__ import annotations

import functools
import gzip
import os
import socket
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from suite.errors import DataNotFoundError
from suite.registry import Registry

NPZ_PREFIX = "npz:"
DATA_ENV = "GENBENCH_DATA"
OFFLINE_ENV = "GENBENCH_OFFLINE"  # set on compute nodes without network: no download attempt
# The holdout split and the max_train_images cap use this fixed seed, so every
# trial of every sweep trains and evaluates on the same images.
SPLIT_SEED = 20191209
HOLDOUT_EVAL_FRACTION = 0.2
MIN_IMAGE_SIZE = 8


@dataclass(frozen=True, eq=False)
class ImageData:
    """A dataset ready for a trial: uint8 images (N, H, W, C), labels, split names."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray | None
    x_eval: np.ndarray
    y_eval: np.ndarray | None
    train_split: str
    eval_split: str
    num_classes: int
    source: str
    class_names: tuple[str, ...] = field(default=())

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(int(d) for d in self.x_train.shape[1:])  # type: ignore[return-value]

    @property
    def labelled(self) -> bool:
        return self.y_train is not None


@dataclass(frozen=True)
class Splits:
    """What a reader found: a test split, and a train split when there is one."""

    x_test: np.ndarray
    y_test: np.ndarray | None
    x_train: np.ndarray | None = None
    y_train: np.ndarray | None = None
    source: str = ""


Reader = Callable[[list[Path]], Splits | None]
DATASETS: Registry[Reader] = Registry("dataset")


# --- format readers -------------------------------------------------------------------


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (gzip or plain) of unsigned bytes: MNIST's own format."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        data = f.read()
    zero, dtype_code, ndim = data[0:2], data[2], data[3]
    if zero != b"\x00\x00" or dtype_code != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte IDX file")
    dims = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    array = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if array.size != int(np.prod(dims)):
        raise ValueError(f"{path}: IDX header says {dims} but holds {array.size} bytes")
    return array.reshape(dims)


def read_cifar_batches(paths: list[Path]) -> tuple[np.ndarray, np.ndarray]:
    """Read CIFAR-10 binary batches: records of 1 label byte + 3072 CHW pixel bytes."""
    records = [np.fromfile(p, dtype=np.uint8) for p in paths]
    raw = np.concatenate(records)
    if raw.size % 3073:
        raise ValueError(f"{paths[0]}: size is not a multiple of a 3073-byte CIFAR record")
    raw = raw.reshape(-1, 3073)
    images = raw[:, 1:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(images), raw[:, 0].astype(np.int64)


def _with_channel(x: np.ndarray) -> np.ndarray:
    return x[..., None] if x.ndim == 3 else x


def _find_idx(directory: Path, stem: str) -> Path | None:
    for name in (f"{stem}.gz", stem):
        if (directory / name).is_file():
            return directory / name
    return None


def _read_idx_dir(directory: Path) -> Splits | None:
    test_x, test_y = _find_idx(directory, "t10k-images-idx3-ubyte"), _find_idx(
        directory, "t10k-labels-idx1-ubyte")
    if test_x is None:
        return None
    train_x, train_y = _find_idx(directory, "train-images-idx3-ubyte"), _find_idx(
        directory, "train-labels-idx1-ubyte")
    return Splits(
        x_test=_with_channel(read_idx(test_x)),
        y_test=read_idx(test_y).astype(np.int64) if test_y else None,
        x_train=_with_channel(read_idx(train_x)) if train_x else None,
        y_train=read_idx(train_y).astype(np.int64) if train_x and train_y else None,
        source=str(directory),
    )


def _read_keras_npz(path: Path) -> Splits:
    with np.load(path, allow_pickle=False) as f:
        return Splits(x_test=_with_channel(f["x_test"]), y_test=f["y_test"].astype(np.int64),
                      x_train=_with_channel(f["x_train"]), y_train=f["y_train"].astype(np.int64),
                      source=str(path))


def _idx_reader(dir_names: tuple[str, ...], npz_name: str | None) -> Reader:
    def read(dirs: list[Path]) -> Splits | None:
        for d in dirs:
            for sub in dir_names:
                found = _read_idx_dir(d / sub) if (d / sub).is_dir() else None
                if found is not None:
                    return found
            if npz_name and (d / npz_name).is_file():
                return _read_keras_npz(d / npz_name)
        return None

    return read


def _read_cifar10(dirs: list[Path]) -> Splits | None:
    for d in dirs:
        folder = d / "cifar-10-batches-bin"
        if (folder / "test_batch.bin").is_file():
            x_test, y_test = read_cifar_batches([folder / "test_batch.bin"])
            train_files = sorted(folder.glob("data_batch_*.bin"))
            x_train, y_train = read_cifar_batches(train_files) if train_files else (None, None)
            return Splits(x_test=x_test, y_test=y_test, x_train=x_train, y_train=y_train,
                          source=str(folder))
    return None


DATASETS.add("mnist", _idx_reader(("mnist", "."), "mnist.npz"),
             labelled=True, image_shape=(28, 28, 1), num_classes=10, keras="mnist",
             files="mnist/t10k-images-idx3-ubyte.gz (+ labels, + train-*), or mnist.npz")
DATASETS.add("fashion_mnist", _idx_reader(("fashion_mnist", "fashion-mnist"), None),
             labelled=True, image_shape=(28, 28, 1), num_classes=10, keras="fashion_mnist",
             files="fashion_mnist/t10k-images-idx3-ubyte.gz (+ labels, + train-*)")
DATASETS.add("cifar10", _read_cifar10,
             labelled=True, image_shape=(32, 32, 3), num_classes=10, keras="cifar10",
             files="cifar-10-batches-bin/test_batch.bin (+ data_batch_1..5.bin)")


# --- names and validation (no data loaded) ----------------------------------------------


def npz_path(name: str) -> Path:
    return Path(name[len(NPZ_PREFIX):]).expanduser()


def peek_npz(path: Path) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """Shapes and dtypes of the arrays in an .npz, read from headers only."""
    out: dict[str, tuple[tuple[int, ...], np.dtype]] = {}
    with zipfile.ZipFile(path) as z:
        for member in z.namelist():
            if not member.endswith(".npy"):
                continue
            with z.open(member) as f:
                major, _ = np.lib.format.read_magic(f)
                read_header = (np.lib.format.read_array_header_1_0 if major == 1
                               else np.lib.format.read_array_header_2_0)
                shape, _, dtype = read_header(f)
            out[member[:-4]] = (tuple(shape), dtype)
    return out


def check_npz(path: Path) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """Validate a user's npz: `x` uint8 (N,H,W) or (N,H,W,C), optional integer `y`."""
    if not path.is_file():
        raise ValueError(f"npz file {str(path)!r} does not exist")
    try:
        arrays = peek_npz(path)
    except (zipfile.BadZipFile, ValueError, OSError) as exc:
        raise ValueError(f"{path} is not a readable .npz file ({exc})") from None
    if "x" not in arrays and "x_train" not in arrays:
        raise ValueError(f"{path} has no `x` array (found: {', '.join(arrays) or 'nothing'}); "
                         "save it with np.savez(path, x=images_uint8, y=labels)")
    for key in ("x", "x_train", "x_test"):
        if key in arrays:
            shape, dtype = arrays[key]
            if dtype != np.uint8 or len(shape) not in (3, 4):
                raise ValueError(f"{path}: `{key}` must be uint8 of shape (N,H,W) or (N,H,W,C), "
                                 f"got {dtype} {shape}")
    for key in ("y", "y_train", "y_test"):
        if key in arrays and arrays[key][1].kind not in "iu":
            raise ValueError(f"{path}: `{key}` must hold integer labels, got {arrays[key][1]}")
    return arrays


def check_dataset_name(name: str) -> None:
    """Raise (ValueError / UnknownNameError) unless `name` names a usable dataset."""
    if name.startswith(NPZ_PREFIX):
        check_npz(npz_path(name))
    else:
        DATASETS.check(name)


def is_labelled_dataset(name: str) -> bool:
    if name.startswith(NPZ_PREFIX):
        arrays = check_npz(npz_path(name))
        return "y" in arrays or "y_train" in arrays
    return bool(DATASETS.tags(name)["labelled"])


# --- locating and loading ------------------------------------------------------------------


def default_data_dirs(data_dir: str | os.PathLike | None = None) -> list[Path]:
    """Where local files are looked for: --data-dir, else $GENBENCH_DATA, else ../shared/data."""
    if data_dir:
        return [Path(data_dir).expanduser()]
    if os.environ.get(DATA_ENV):
        return [Path(os.environ[DATA_ENV]).expanduser()]
    repo_root = Path(__file__).resolve().parent.parent
    candidates = [Path.cwd().parent / "shared" / "data", repo_root.parent / "shared" / "data"]
    return [p for p in dict.fromkeys(c.resolve() for c in candidates) if p.is_dir()]


def _download_with_keras(name: str) -> Splits:
    import keras  # only here: a download is the one path that needs it

    loader = getattr(keras.datasets, str(DATASETS.tags(name)["keras"]))
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(30)
    try:
        (x_train, y_train), (x_test, y_test) = loader.load_data()
    finally:
        socket.setdefaulttimeout(previous)
    return Splits(x_test=_with_channel(x_test),
                  y_test=np.asarray(y_test).reshape(-1).astype(np.int64),
                  x_train=_with_channel(x_train),
                  y_train=np.asarray(y_train).reshape(-1).astype(np.int64),
                  source=f"keras.datasets.{DATASETS.tags(name)['keras']}")


def _read_user_npz(path: Path) -> Splits:
    arrays = check_npz(path)
    with np.load(path, allow_pickle=False) as f:
        if "x_train" in arrays and "x_test" in arrays:
            return Splits(x_test=_with_channel(f["x_test"]),
                          y_test=f["y_test"].astype(np.int64) if "y_test" in arrays else None,
                          x_train=_with_channel(f["x_train"]),
                          y_train=f["y_train"].astype(np.int64) if "y_train" in arrays else None,
                          source=str(path))
        key = "x" if "x" in arrays else "x_train"
        ykey = "y" if "y" in arrays else "y_train"
        y = f[ykey].astype(np.int64).reshape(-1) if ykey in arrays else None
        return Splits(x_test=_with_channel(f[key]), y_test=y, source=str(path))


def _holdout(splits: Splits) -> tuple[np.ndarray, np.ndarray | None, np.ndarray,
                                      np.ndarray | None, str, str]:
    """Cut a fixed train/eval holdout out of a lone split (e.g. only the test split)."""
    n = len(splits.x_test)
    order = np.random.default_rng(SPLIT_SEED).permutation(n)
    n_eval = max(1, int(round(n * HOLDOUT_EVAL_FRACTION)))
    train_idx, eval_idx = order[n_eval:], order[:n_eval]
    y = splits.y_test
    return (splits.x_test[train_idx], None if y is None else y[train_idx],
            splits.x_test[eval_idx], None if y is None else y[eval_idx],
            f"test[holdout-train {n - n_eval}/{n}]", f"test[holdout-eval {n_eval}/{n}]")


@functools.lru_cache(maxsize=8)
def load_dataset(name: str, data_dir: str | None = None) -> ImageData:
    """Load a dataset by registry name or `npz:PATH`; raise DataNotFoundError with a fix."""
    if name.startswith(NPZ_PREFIX):
        path = npz_path(name)
        try:
            splits = _read_user_npz(path)
        except ValueError as exc:
            raise DataNotFoundError(f"dataset {name!r}: {exc}") from None
        class_names: tuple[str, ...] = ()
    else:
        dirs = default_data_dirs(data_dir)
        splits = DATASETS.get(name)(dirs)
        if splits is None:
            splits = _download_or_explain(name, dirs)
        class_names = _class_names(name, splits.source)
    if splits.x_train is not None:
        x_train, y_train = splits.x_train, splits.y_train
        x_eval, y_eval = splits.x_test, splits.y_test
        train_split, eval_split = "train", "test"
        order = np.random.default_rng(SPLIT_SEED).permutation(len(x_train))
        x_train, y_train = x_train[order], None if y_train is None else y_train[order]
    else:
        x_train, y_train, x_eval, y_eval, train_split, eval_split = _holdout(splits)
    labels = [y for y in (y_train, y_eval) if y is not None]
    num_classes = int(max(int(y.max()) for y in labels) + 1) if labels else 0
    data = ImageData(name=name, x_train=np.ascontiguousarray(x_train), y_train=y_train,
                     x_eval=np.ascontiguousarray(x_eval), y_eval=y_eval, train_split=train_split,
                     eval_split=eval_split, num_classes=num_classes, source=splits.source,
                     class_names=class_names)
    check_image_shape(data)
    return data


def check_image_shape(data: ImageData) -> None:
    """The generators start at size/4 and double twice: square sizes divisible by 4."""
    h, w, c = data.image_shape
    if h != w or h % 4 or h < MIN_IMAGE_SIZE:
        raise DataNotFoundError(
            f"dataset {data.name!r} ({data.source}): images are {h}x{w}x{c}; genbench's models "
            f"take square images whose side is a multiple of 4 and at least {MIN_IMAGE_SIZE}. "
            "Fix: crop or pad the images to e.g. 28x28 or 32x32.")


def _download_or_explain(name: str, dirs: list[Path]) -> Splits:
    try:
        if os.environ.get(OFFLINE_ENV, "") not in ("", "0"):
            raise RuntimeError(f"downloads are disabled by ${OFFLINE_ENV}")
        return _download_with_keras(name)
    except Exception as exc:  # any download failure becomes one actionable message
        looked = ", ".join(str(d) for d in dirs) or "(no data dir: none given, "
        if not dirs:
            looked += f"${DATA_ENV} unset, ../shared/data absent)"
        raise DataNotFoundError(
            f"dataset {name!r} not found.\n"
            f"  looked in: {looked}\n"
            f"  download through keras.datasets failed: {type(exc).__name__}: {exc}\n"
            f"  fix: pass --data-dir DIR (or set ${DATA_ENV}=DIR) where DIR holds "
            f"{DATASETS.tags(name)['files']}, or run where the download works"
        ) from None


def _class_names(name: str, source: str) -> tuple[str, ...]:
    meta = Path(source) / "batches.meta.txt"
    if name == "cifar10" and meta.is_file():
        return tuple(line.strip() for line in meta.read_text().splitlines() if line.strip())
    return ()
