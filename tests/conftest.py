"""Shared fixtures: real data from ../shared/data, small sweep files, the CLI."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    if not (SHARED_DATA / "mnist").is_dir():
        pytest.fail(f"real test data missing: expected {SHARED_DATA} (../shared/data)")
    return SHARED_DATA


@pytest.fixture
def write_sweep(tmp_path):
    """Write a sweep YAML (dedented) into tmp_path and return its path."""

    def write(text: str, name: str = "sweep.yaml") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text))
        return path

    return write


@pytest.fixture(scope="session")
def eval_cache(tmp_path_factory):
    """One genbench cache for the session: the domain classifier is trained once."""
    path = tmp_path_factory.getbasetemp() / "genbench-cache"
    path.mkdir(exist_ok=True)
    patch = pytest.MonkeyPatch()
    patch.setenv("GENBENCH_CACHE", str(path))
    yield path
    patch.undo()


@pytest.fixture(scope="session")
def mnist(data_dir):
    """Real MNIST (the ../shared/data test split, as a holdout)."""
    from suite.data import load_dataset

    return load_dataset("mnist", str(data_dir))
