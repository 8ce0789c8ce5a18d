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
