"""Datasets from the original file formats (real MNIST / CIFAR-10 from ../shared/data)."""

from __future__ import annotations

import gzip
import shutil

import numpy as np
import pytest

from suite.common.errors import DataNotFoundError
from suite.data.catalog import load_dataset, read_cifar_batches, read_idx


def test_mnist_idx_matches_published_facts(data_dir):
    x = read_idx(data_dir / "mnist" / "t10k-images-idx3-ubyte.gz")
    y = read_idx(data_dir / "mnist" / "t10k-labels-idx1-ubyte.gz")
    assert x.shape == (10000, 28, 28) and x.dtype == np.uint8
    assert np.bincount(y).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert x.mean() == pytest.approx(33.79, abs=0.01)


def test_cifar_binary_matches_published_facts(data_dir):
    x, y = read_cifar_batches([data_dir / "cifar-10-batches-bin" / "test_batch.bin"])
    assert x.shape == (10000, 32, 32, 3)
    assert np.bincount(y).tolist() == [1000] * 10
    assert x.reshape(-1, 3).mean(0) == pytest.approx([126.0, 123.7, 114.9], abs=0.06)


def test_holdout_is_deterministic_disjoint_and_recorded(data_dir):
    a = load_dataset("mnist", str(data_dir))
    load_dataset.cache_clear()
    b = load_dataset("mnist", str(data_dir))
    assert np.array_equal(a.x_train, b.x_train) and np.array_equal(a.y_eval, b.y_eval)
    assert a.x_train.shape == (8000, 28, 28, 1) and a.x_eval.shape == (2000, 28, 28, 1)
    assert a.train_split == "test[holdout-train 8000/10000]"
    assert a.eval_split == "test[holdout-eval 2000/10000]"
    # Disjoint: no eval image appears in the training part.
    train_keys = {img.tobytes() for img in a.x_train}
    assert sum(img.tobytes() in train_keys for img in a.x_eval) < 5  # MNIST has a few duplicates
    assert a.num_classes == 10 and a.labelled


def test_cifar_is_shuffled_before_the_holdout(data_dir):
    data = load_dataset("cifar10", str(data_dir))
    assert data.image_shape == (32, 32, 3)
    counts = np.bincount(data.y_eval, minlength=10)
    assert counts.min() > 150  # the file is sorted by class: an unshuffled cut would be 2 classes
    assert data.class_names[:2] == ("airplane", "automobile")


def test_train_and_test_files_give_the_real_splits(data_dir, tmp_path):
    # A data dir with a train split too: reuse the test files as "train" files.
    mnist = tmp_path / "mnist"
    mnist.mkdir()
    for kind in ("images-idx3", "labels-idx1"):
        src = data_dir / "mnist" / f"t10k-{kind}-ubyte.gz"
        shutil.copy(src, mnist / f"t10k-{kind}-ubyte.gz")
        with gzip.open(src) as f, open(mnist / f"train-{kind}-ubyte", "wb") as g:
            g.write(f.read())  # plain (not gzipped) IDX is read too
    data = load_dataset("mnist", str(tmp_path))
    assert (data.train_split, data.eval_split) == ("train", "test")
    assert len(data.x_train) == 10000 and len(data.x_eval) == 10000


def test_keras_npz_format(data_dir, tmp_path):
    x = read_idx(data_dir / "mnist" / "t10k-images-idx3-ubyte.gz")
    y = read_idx(data_dir / "mnist" / "t10k-labels-idx1-ubyte.gz")
    np.savez(tmp_path / "mnist.npz", x_train=x[:600], y_train=y[:600], x_test=x[600:800],
             y_test=y[600:800])
    data = load_dataset("mnist", str(tmp_path))
    assert data.x_train.shape == (600, 28, 28, 1) and data.source.endswith("mnist.npz")


def test_user_npz_with_and_without_labels(tmp_path):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "rgb.npz", x=rng.integers(0, 256, (100, 16, 16, 3), dtype=np.uint8),
             y=rng.integers(0, 4, 100))
    data = load_dataset(f"npz:{tmp_path / 'rgb.npz'}")
    assert data.image_shape == (16, 16, 3) and data.num_classes == 4
    assert len(data.x_train) == 80 and len(data.x_eval) == 20
    np.savez(tmp_path / "gray.npz", x=rng.integers(0, 256, (50, 12, 12), dtype=np.uint8))
    data = load_dataset(f"npz:{tmp_path / 'gray.npz'}")
    assert data.image_shape == (12, 12, 1) and not data.labelled and data.num_classes == 0


def test_bad_npz_is_explained(tmp_path):
    np.savez(tmp_path / "f.npz", x=np.zeros((10, 8, 8), np.float32))
    with pytest.raises(DataNotFoundError, match="must be uint8"):
        load_dataset(f"npz:{tmp_path / 'f.npz'}")


def test_missing_dataset_says_where_it_looked(tmp_path, monkeypatch):
    monkeypatch.setenv("GENBENCH_OFFLINE", "1")
    with pytest.raises(DataNotFoundError) as info:
        load_dataset("fashion_mnist", str(tmp_path))
    message = str(info.value)
    assert str(tmp_path) in message and "--data-dir" in message
    assert "fashion_mnist/t10k-images-idx3-ubyte.gz" in message
    assert "GENBENCH_OFFLINE" in message


def test_size_limit_is_exact_on_real_mnist(data_dir, tmp_path, monkeypatch):
    # t10k-images holds 10000 x 28 x 28 = 7,840,000 pixel bytes after its header.
    from suite.data.rules import MAX_DATA_ENV, max_data_bytes, physical_memory

    monkeypatch.delenv(MAX_DATA_ENV, raising=False)
    assert max_data_bytes() == min(8 * 2**30, physical_memory() // 2)
    monkeypatch.setenv(MAX_DATA_ENV, "7840000")
    load_dataset.cache_clear()
    assert load_dataset("mnist", str(data_dir)).x_train.shape == (8000, 28, 28, 1)
    monkeypatch.setenv(MAX_DATA_ENV, "7839999")
    load_dataset.cache_clear()
    with pytest.raises(DataNotFoundError, match="t10k-images-idx3-ubyte.gz.*over the"):
        load_dataset("mnist", str(data_dir))
    load_dataset.cache_clear()


def test_real_mnist_as_a_user_npz_passes_every_rule(data_dir, tmp_path):
    from suite.data.catalog import check_dataset_name, is_labelled_dataset

    x = read_idx(data_dir / "mnist" / "t10k-images-idx3-ubyte.gz")
    y = read_idx(data_dir / "mnist" / "t10k-labels-idx1-ubyte.gz")
    path = tmp_path / "digits.npz"
    np.savez_compressed(path, x_train=x[:900, ..., None], y_train=y[:900, None],
                        x_test=x[900:1000], y_test=y[900:1000])
    name = f"npz:{path}"
    check_dataset_name(name)
    assert is_labelled_dataset(name)
    data = load_dataset(name)
    assert data.image_shape == (28, 28, 1) and data.num_classes == 10
    assert np.array_equal(np.sort(data.y_eval), np.sort(y[900:1000].astype(np.int64)))


def test_default_data_dir_is_found_beside_the_repo_from_any_working_directory(
        tmp_path, monkeypatch, data_dir):
    """Ray and Slurm workers run in other directories: ../shared/data is looked for beside
    the repository too, not only beside the working directory."""
    from suite.data.catalog import DATA_ENV, default_data_dirs

    monkeypatch.delenv(DATA_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    assert default_data_dirs() == [data_dir.resolve()]
