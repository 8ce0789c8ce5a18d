"""Datasets: the DATASETS registry, dataset names, and loading for a trial.

Images come back as uint8 arrays (N, H, W, C) with integer labels. Sources, in
order: a data dir (`--data-dir`, else `$GENBENCH_DATA`, else `../shared/data`
when it exists) holding the original formats (MNIST / Fashion-MNIST IDX `.gz`,
CIFAR-10 binary batches, Keras' `mnist.npz`), then `keras.datasets` (its cache,
or a download). `npz:PATH` loads a user's own arrays. Nothing is unpickled.

Nothing is trusted before it is checked: a user npz is held to every rule its headers
can tell when a sweep is parsed (`check_dataset_name`, cheap: no pixel is read), and to
its label values when it is loaded; IDX and CIFAR files to their declared sizes and the
size limit (readers: suite/data/formats.py; rules: suite/data/rules.py).

No TensorFlow is imported here unless a download is needed.
"""

from __future__ import annotations

import functools
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from suite.common.errors import DataError, DataNotFoundError
from suite.common.messages import shorten
from suite.common.registry import Registry
from suite.data.formats import (  # noqa: F401  (read_* and Splits: re-exported)
    REPLACE_FIX,
    Splits,
    read_cifar_batches,
    read_cifar_dir,
    read_idx,
    read_idx_dir,
    read_user_npz,
    with_channel,
)
from suite.data.rules import (  # noqa: F401  (MIN_IMAGE_SIZE, MAX_DATA_ENV: re-exported)
    IMAGE_SIZE_FIX,
    MAX_DATA_ENV,
    MIN_IMAGE_SIZE,
    READ_ERRORS,
    SAVE_FIX,
    checked_npz,
    explain,
    image_size_problem,
)

NPZ_PREFIX = "npz:"
DATA_ENV = "GENBENCH_DATA"
OFFLINE_ENV = "GENBENCH_OFFLINE"  # set on compute nodes without network: no download attempt
# The holdout split and the max_train_images cap use this fixed seed, so every
# trial of every sweep trains and evaluates on the same images.
SPLIT_SEED = 20191209
HOLDOUT_EVAL_FRACTION = 0.2


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


Reader = Callable[[list[Path]], Splits | None]
DATASETS: Registry[Reader] = Registry("dataset")


# --- registered readers -------------------------------------------------------------


def _idx_reader(dir_names: tuple[str, ...], npz_name: str | None, classes: int = 10) -> Reader:
    def read(dirs: list[Path]) -> Splits | None:
        for d in dirs:
            for sub in dir_names:
                found = read_idx_dir(d / sub, classes) if (d / sub).is_dir() else None
                if found is not None:
                    return found
            if npz_name and (d / npz_name).is_file():  # Keras' file: the user-npz layout
                return read_user_npz(d / npz_name, classes)
        return None

    return read


def _read_cifar10(dirs: list[Path]) -> Splits | None:
    for d in dirs:
        folder = d / "cifar-10-batches-bin"
        if (folder / "test_batch.bin").is_file():
            return read_cifar_dir(folder)
    return None


DATASETS.add("mnist", _idx_reader(("mnist", "."), "mnist.npz"),
             labelled=True, image_shape=(28, 28, 1), num_classes=10, keras="mnist",
             files="mnist/t10k-images-idx3-ubyte.gz (+ labels, + train-*), or mnist.npz")
DATASETS.add("fashion_mnist", _idx_reader(("fashion_mnist", "fashion-mnist"), None),
             labelled=True, image_shape=(28, 28, 1), num_classes=10, keras="fashion_mnist",
             files="fashion_mnist/t10k-images-idx3-ubyte.gz (+ labels, + train-*)")
# `classifier_steps`: the step budget of the classifier trained on the dataset (the
# `domain` backbone, the classification accuracy score) where the default (250,
# suite/metrics/backbones/classifier.py) falls short. CIFAR-10's 8,000 holdout images:
# 61.9% eval accuracy after 800 steps, 50.7% after 300 (MNIST: 99.2% and 98.75%; 98.55%
# after the default 250).
DATASETS.add("cifar10", _read_cifar10,
             labelled=True, image_shape=(32, 32, 3), num_classes=10, keras="cifar10",
             files="cifar-10-batches-bin/test_batch.bin (+ data_batch_1..5.bin)",
             classifier_steps=800)


# --- names and validation (no data loaded) ----------------------------------------------


def npz_path(name: str) -> Path:
    return Path(name[len(NPZ_PREFIX):]).expanduser()


def peek_npz(path: Path) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """Shapes and dtypes of the arrays in an .npz, read from headers only (and checked)."""
    return {k: (a.shape, a.dtype) for k, a in checked_npz(path).items()}


def check_npz(path: Path) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """Validate a user's npz from its headers: every key, shape, dtype, length and size rule
    (suite/data/rules.py); raise DataRuleError (a ValueError) naming the file and array,
    its `fix` attribute says what to do."""
    return peek_npz(path)


def classifier_steps(name: str) -> int | None:
    """The dataset's own step budget for a classifier trained on it (None: the default)."""
    if name not in DATASETS:
        return None  # an npz file
    steps = DATASETS.tags(name).get("classifier_steps")
    return int(steps) if steps is not None else None  # type: ignore[call-overload]


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
    repo_root = Path(__file__).resolve().parents[2]  # suite/data/catalog.py -> the repo
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
    return Splits(x_test=with_channel(x_test),
                  y_test=np.asarray(y_test).reshape(-1).astype(np.int64),
                  x_train=with_channel(x_train),
                  y_train=np.asarray(y_train).reshape(-1).astype(np.int64),
                  source=f"keras.datasets.{DATASETS.tags(name)['keras']}")


def _check_splits(splits: Splits, name: str) -> None:
    """What every reader must deliver, whatever its source: images, one label each, one size."""
    for split, x, y in (("test", splits.x_test, splits.y_test),
                        ("train", splits.x_train, splits.y_train)):
        if x is None or (x.ndim == 4 and len(x) and (y is None or y.shape == (len(x),))):
            continue
        raise DataError(f"dataset {name!r} ({splits.source}): the {split} split holds images "
                        f"{shorten(x.shape)} and labels {shorten(None if y is None else y.shape)}"
                        f"\n  fix: {REPLACE_FIX}")
    if splits.x_train is not None and splits.x_train.shape[1:] != splits.x_test.shape[1:]:
        raise DataError(f"dataset {name!r} ({splits.source}): train images are "
                        f"{shorten(splits.x_train.shape[1:])} but test images "
                        f"{shorten(splits.x_test.shape[1:])}\n  fix: {REPLACE_FIX}")


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
    """Load a dataset by registry name or `npz:PATH`, checked before any trial trusts it.

    Raises DataNotFoundError with a fix; DataError (a subclass) for a file that breaks a rule.
    """
    if name.startswith(NPZ_PREFIX):
        try:
            splits = read_user_npz(npz_path(name))
        except (ValueError, OSError) as exc:  # a header rule: names the file and array
            raise DataError(explain(exc, SAVE_FIX)) from None
        class_names: tuple[str, ...] = ()
    else:
        dirs, reader = default_data_dirs(data_dir), DATASETS.get(name)
        try:
            splits = reader(dirs)
        except READ_ERRORS as exc:  # a damaged or hostile file in the data dir
            raise DataError(f"dataset {name!r}: {explain(exc, REPLACE_FIX)}") from None
        if splits is None:
            splits = _download_or_explain(name, dirs)
        class_names = _class_names(name, splits.source)
    _check_splits(splits, name)
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
    """The generators start at size/4 and double twice: square sizes divisible by 4.

    User npz files are held to this when the sweep is parsed; this catches the rest."""
    size_problem = image_size_problem(*data.image_shape)
    if size_problem:
        raise DataError(f"dataset {data.name!r} ({data.source}): {size_problem}\n"
                        f"  fix: {IMAGE_SIZE_FIX}")


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
    if name == "cifar10" and meta.is_file() and meta.stat().st_size < 2**20:
        return tuple(line.strip() for line in meta.read_text().splitlines() if line.strip())
    return ()
