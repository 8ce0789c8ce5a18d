"""`genbench run --launcher ray --address HEAD:PORT` on the emulated 2-node Ray cluster
(head in gbnode1, a worker raylet in gbnode2, one CPU each, token authentication):
a 2-worker trial puts one rank on each node and lands embedded Ray's rows; a node
that dies mid-trial fails the trial with its host named, and a re-run resumes."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_launcher_parity import assert_same_rows  # tests/integration is on sys.path

from analysis.load import load_results
from suite.store import schema

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("ray") is None or importlib.util.find_spec("horovod") is None,
    reason="needs Ray Tune and Horovod: pip install 'genbench[ray]', tools/install-horovod.sh")

SPAN = """\
name: span
dataset: mnist
fixed: {model: dcgan, upsampling: nearest, latent_dim: 8, batch_size: 32, width: 0.0625,
        max_train_images: 256, epochs: 1, workers: 2}
eval: {n_samples: 64, backbones: [domain]}
"""

# Trial 0 spans both nodes and runs long enough to lose one mid-way; trial 1 (one
# worker) runs after it (--max-concurrent 1) on whatever is left.
DEATH = """\
name: death
dataset: mnist
grid:
  - {model: [dcgan], workers: [2], epochs: [1, 2, 3]}
  - {model: [vae], workers: [1], epochs: [1]}
fixed: {upsampling: nearest, latent_dim: 8, batch_size: 32, width: 0.0625,
        max_train_images: 2048}
eval: {n_samples: 64, backbones: [domain]}
"""
STOP_BOUND_S = 120  # a hang check (Ray's node health checks take ~15 s), not a speed goal


def run_argv(sweep: Path, out: Path, data_dir: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "suite.cli.main", "run", str(sweep), "--out", str(out),
            "--data-dir", str(data_dir), "--quiet", *extra]


def run_env(base: dict) -> dict:
    return {**base, "GENBENCH_INTRA_OP_THREADS": "1"}  # as the parity test: same sums


def netns_inode(name: str) -> int:
    return os.stat(f"/run/netns/{name}").st_ino


def processes_in(netns: str, title: str) -> list[int]:
    """PIDs of processes called `title` (Ray's proctitle) inside network namespace `netns`."""
    inode, found = netns_inode(netns), []
    for proc in Path("/proc").iterdir():
        with contextlib.suppress(OSError):
            if (proc.name.isdigit() and (proc / "cmdline").read_bytes().startswith(title.encode())
                    and os.readlink(proc / "ns" / "net") == f"net:[{inode}]"):
                found.append(int(proc.name))
    return found


@pytest.fixture(scope="module")
def ray_nodes(multinode):
    return multinode, multinode.ray_env()


def test_two_node_trial_has_a_rank_per_node_and_embedded_rows(ray_nodes, tmp_path, data_dir,
                                                               eval_cache):
    cluster, env = ray_nodes
    sweep = tmp_path / "span.yaml"
    sweep.write_text(SPAN)
    # Embedded Ray first, on both cores: it also prepares the session's eval cache.
    proc = subprocess.run(run_argv(sweep, tmp_path / "embedded", data_dir, "--launcher", "ray"),
                          env=run_env(dict(os.environ)), capture_output=True, text=True,
                          timeout=900, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    embedded = load_results(tmp_path / "embedded" / "span")
    assert embedded[schema.NODES].tolist() == [1]

    argv = run_argv(sweep, tmp_path / "nodes", data_dir, "--launcher", "ray",
                    "--address", env["RAY_ADDRESS"], "--placement-strategy", "SPREAD")
    proc = subprocess.run(cluster.node_argv(1, *argv), env=run_env(env), capture_output=True,
                          text=True, timeout=900, cwd=tmp_path)  # the driver in gbnode1
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    spanned = load_results(tmp_path / "nodes" / "span")
    assert spanned[schema.HOSTS].tolist() == [",".join(sorted(cluster.nodes))]
    assert spanned[schema.NODES].tolist() == [2]

    assert_same_rows(embedded, spanned, "2-node Ray against embedded Ray")


def test_lost_node_fails_the_trial_naming_it_and_a_rerun_resumes(ray_nodes, tmp_path,
                                                                  data_dir, eval_cache):
    cluster, env = ray_nodes
    sweep, out = tmp_path / "death.yaml", tmp_path / "out"
    sweep.write_text(DEATH)
    argv = cluster.node_argv(1, *run_argv(sweep, out, data_dir, "--launcher", "ray", "--address",
                                          env["RAY_ADDRESS"], "--max-concurrent", "1",
                                          "--max-failures", "0"))
    log = tmp_path / "driver.log"
    with open(log, "wb") as f:
        driver = subprocess.Popen(argv, env=run_env(env), stdout=f, stderr=subprocess.STDOUT,
                                  cwd=tmp_path)
    try:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline and driver.poll() is None and not list(
                out.glob("death/trials/*/checkpoint.npz")):
            time.sleep(0.5)
        assert driver.poll() is None, log.read_text()[-3000:]
        lost, survivor = cluster.nodes[1], cluster.nodes[0]
        assert processes_in(lost, "ray::RankActor"), "no rank runs on the second node"
        cluster.kill_node(2)
        killed_at = time.monotonic()
        while processes_in(survivor, "ray::RankActor") and time.monotonic() - killed_at < 300:
            time.sleep(0.5)
        stopped_s = time.monotonic() - killed_at
        print(f"surviving rank stopped {stopped_s:.1f} s after node {lost} was killed")
        assert stopped_s < STOP_BOUND_S
        assert driver.wait(timeout=600) == 1, log.read_text()[-3000:]  # a trial failed
    finally:
        if driver.poll() is None:
            driver.kill()
        cluster.restart(ray=True)  # node 2's slurmd and raylet again, also for later tests
    rows = load_results(out / "death", deduplicate=False)
    spanning = rows[rows[schema.WORKERS] == 2]
    failed = spanning[spanning[schema.STATUS] == schema.STATUS_FAILED]
    assert len(failed) == 1 and lost in failed[schema.ERROR].iloc[0], failed[schema.ERROR]
    first = spanning[spanning[schema.STATUS] == schema.STATUS_OK]
    assert first[schema.EPOCH].tolist() == [1]
    other = rows[rows[schema.WORKERS] == 1]
    assert other[schema.STATUS].tolist() == [schema.STATUS_OK]  # the sweep went on

    proc = subprocess.run(argv, env=run_env(env), capture_output=True, text=True, timeout=900,
                          cwd=tmp_path)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    rows = load_results(out / "death", deduplicate=False)
    spanning = rows[rows[schema.WORKERS] == 2].sort_values(schema.EPOCH)
    assert spanning[schema.EPOCH].tolist() == [1, 2, 3]  # each milestone exactly once
    assert set(spanning[schema.STATUS]) == {schema.STATUS_OK}
    # Resumed, not restarted: the epoch-1 row is the one written before the node died.
    assert spanning[schema.TIMESTAMP].iloc[0] == first[schema.TIMESTAMP].iloc[0]
    assert spanning[schema.HOSTS].iloc[-1] == ",".join(sorted(cluster.nodes))
