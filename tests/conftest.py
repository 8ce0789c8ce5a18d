"""Shared fixtures: real data from ../shared/data, small sweep files, the CLI."""

from __future__ import annotations

import os
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# Every cache the suite and Keras write goes to a directory of this test session, set
# before anything is imported, so subprocesses (ranks, Ray workers, Slurm jobs) inherit
# it and no test depends on, or writes into, the user's ~/.cache/genbench or ~/.keras.
SESSION_CACHE = Path(tempfile.mkdtemp(prefix="genbench-test-cache-"))
os.environ["GENBENCH_CACHE"] = str(SESSION_CACHE / "genbench")
os.environ["KERAS_HOME"] = str(SESSION_CACHE / "keras")

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "data"
# Test-only code that is not a test (e.g. the stand-in Inception graph) lives here.
sys.path.insert(0, str(REPO / "tests" / "support"))


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
def eval_cache() -> Path:
    """The session's genbench cache: the domain classifier is trained once per session."""
    path = SESSION_CACHE / "genbench"
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="session")
def mnist(data_dir):
    """Real MNIST (the ../shared/data test split, as a holdout)."""
    from suite.data.catalog import load_dataset

    return load_dataset("mnist", str(data_dir))
