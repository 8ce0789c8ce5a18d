"""Integration tier: trains models, starts Horovod ranks, Ray, Slurm or Chromium.

Every test in this folder is marked `integration`; `make test-fast` leaves them out.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import multinode_cluster  # tests/integration is on sys.path (no __init__.py)
import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
CLUSTER_SCRIPT = REPO / "slurm" / "local-cluster.sh"
BIN = Path(sys.executable).parent


def pytest_collection_modifyitems(config, items):
    for item in items:
        if HERE in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def slurm_env():
    """The one-node Slurm cluster (slurm/local-cluster.sh), started once per session and
    stopped at its end if this session started it. Skips where it cannot start (e.g. not
    root); fails instead under CI (CI=true), which must run these tests."""
    try:
        proc = subprocess.run([str(CLUSTER_SCRIPT), "start"], capture_output=True, text=True,
                              timeout=900, stdin=subprocess.DEVNULL)
        problem = "" if proc.returncode == 0 else (proc.stdout + proc.stderr).strip()[-2000:]
    except (OSError, subprocess.TimeoutExpired) as exc:
        problem = str(exc)
    if problem:
        reason = f"the one-node Slurm cluster cannot start: {problem}"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    conf = Path(os.environ.get("GENBENCH_SLURM_DIR", "/var/lib/genbench-slurm")) / "slurm.conf"
    yield {**os.environ, "SLURM_CONF": str(conf), "GENBENCH": str(BIN / "genbench"),
           "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    if "started in" in proc.stdout:  # leave a cluster that was already up as it was
        subprocess.run([str(CLUSTER_SCRIPT), "stop"], capture_output=True, timeout=120)


@pytest.fixture(scope="session")
def multinode():
    """The emulated 2-node cluster (slurm/local-cluster.sh start --nodes 2: gbnode1 and
    gbnode2, each its own network and UTS namespace with its own address and a core),
    started once per session beside the one-node cluster of `slurm_env` (own cluster dir
    and slurmctld port) and stopped at its end if this session started it. `.env` runs
    Slurm commands on it; `.ray_env()` adds a Ray cluster on the same nodes. Skips where
    it cannot start; fails instead under CI."""
    cluster = multinode_cluster.start(nodes=2)
    yield cluster
    cluster.stop()
