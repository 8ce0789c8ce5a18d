"""`make run` asks tools/sweep_facts.py whether to build Horovod and where results go."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TOOL = REPO / "tools" / "sweep_facts.py"


def facts(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(TOOL), *args], capture_output=True, text=True,
                          cwd=REPO, timeout=120)


def test_default_sweep_needs_no_horovod():
    """The first `make run` must not wait minutes for a Horovod build it does not use."""
    assert "SWEEP  ?= demo" in (REPO / "Makefile").read_text()
    assert facts("needs-horovod", "demo").returncode == 1
    assert facts("name", "demo").stdout.strip() == "demo"


@pytest.mark.parametrize("workers, needs", [("[1, 2]", 0), ("[1]", 1)])
def test_multi_worker_trial_needs_horovod(write_sweep, workers, needs):
    path = write_sweep(f"name: hv\ndataset: mnist\ngrid: {{model: [vae], workers: {workers}}}\n"
                       "fixed: {batch_size: 32, max_train_images: 256}\n")
    assert facts("needs-horovod", str(path)).returncode == needs
    assert facts("name", str(path)).stdout.strip() == "hv"


def test_bad_sweep_is_one_message(write_sweep):
    path = write_sweep("name: t\ndataset: mnist\nfixed: {model: biggan}\n")
    result = facts("needs-horovod", str(path))
    assert result.returncode == 2
    assert result.stderr.startswith("genbench: error: ") and "fixed.model" in result.stderr
    assert "Traceback" not in result.stderr
    assert facts("what", "demo").returncode == 2
