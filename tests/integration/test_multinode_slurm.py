"""Slurm and Horovod across two nodes, on the emulated 2-node cluster (`multinode` fixture:
gbnode1 and gbnode2, each its own network and UTS namespace with one core).

A `workers: 4` trial with 2 ranks per node lands rows whose `hosts` name both nodes,
every rank sits where the plan says (host, local rank, the node's core, rendezvous on
node 1's bridge address, Gloo on the bridge interface), and the rows equal those of the
same trial's 4 ranks on one host. A node that dies mid-trial (killed, or its link taken
down) stops the surviving rank without waiting for a Slurm time limit, the trial is
recorded failed naming the lost host, and a re-run resumes from the checkpoint with every
milestone row once. The measured times are printed (docs/slurm.md#running-across-nodes).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from analysis.load import load_results
from suite.store import schema
from suite.store.trial_store import TrialStore
from suite.sweep.loader import load_sweep

REPO = Path(__file__).resolve().parents[2]
SBATCH_TEMPLATE = REPO / "slurm" / "sweep.sbatch"
# Tiny: 4 ranks share 2 cores (one per node).
SWEEP = """\
name: {name}
dataset: mnist
fixed: {{model: dcgan, upsampling: nearest, latent_dim: 8, batch_size: 16, workers: {workers},
        max_train_images: {images}, width: 0.0625}}
grid: {{epochs: {epochs}}}
eval: {{n_samples: 64, backbones: []}}
"""
KEYS = [schema.TRIAL_ID, schema.EPOCH, schema.STATUS, schema.WORKERS, schema.N_TRAIN,
        schema.PARAMS_TOTAL]
VALUES = [schema.LOSS_G, schema.LOSS_D, schema.SPECTRAL_DISTANCE, schema.CHECKERBOARD_SCORE]
PLACEMENT = re.compile(r"rank (\d+)/(\d+) placement: host=(\S+) local_rank=(\d+)/(\d+) "
                       r"cross_rank=\S+ cores=(\S+) rendezvous=(\S+):(\d+) iface=(\S+)")
SLURM_ARGS = ["--launcher", "slurm", "--partition", "debug", "--time", "30", "--poll-s", "1"]
STOP_DEADLINE_S = 400  # a hang would last until the job's time limit (30 min)
GLOO_TIMEOUT_S = 30  # Horovod's default


def run_env(base: dict) -> dict:
    # One intra-op thread everywhere: reductions add up in the same order.
    return {**base, "GENBENCH_INTRA_OP_THREADS": "1"}


def genbench(sweep: Path, out: Path, data_dir: Path, *extra: str, env: dict,
             wait: bool = True):
    argv = [sys.executable, "-m", "suite.cli.main", "run", str(sweep), "--out", str(out),
            "--data-dir", str(data_dir), "--quiet", *extra]
    if not wait:
        return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, env=run_env(env), cwd=sweep.parent)
    start = time.monotonic()
    proc = subprocess.run(argv, capture_output=True, text=True, env=run_env(env), timeout=1500,
                          cwd=sweep.parent)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    return time.monotonic() - start


def write_sweep(directory: Path, name: str, workers: int, epochs: str,
                images: int = 256) -> Path:
    path = directory / f"{name}.yaml"
    path.write_text(SWEEP.format(name=name, workers=workers, epochs=epochs, images=images))
    return path


def placements(log_dir: Path) -> list[tuple]:
    logs = [p for p in sorted(log_dir.rglob("*")) if p.suffix in (".out", ".log")]
    text = "\n".join(p.read_text(errors="replace") for p in logs)
    return [m.groups() for m in PLACEMENT.finditer(text)]


def assert_spans_two_nodes(multinode, out: Path, sweep: str, log_dir: Path) -> None:
    df = load_results(out / sweep)
    assert set(df[schema.STATUS]) == {"ok"}
    assert set(df[schema.HOSTS]) == {",".join(multinode.nodes)}
    assert set(df[schema.NODES]) == {2}
    found = placements(log_dir)
    assert sorted(int(p[0]) for p in found) == [0, 1, 2, 3], found
    by_host: dict[str, list[tuple]] = {}
    for p in found:
        by_host.setdefault(p[2], []).append(p)
    assert sorted(by_host) == multinode.nodes
    for ranks in by_host.values():
        assert sorted(int(p[3]) for p in ranks) == [0, 1] and {p[4] for p in ranks} == {"2"}
        assert len({p[5] for p in ranks}) == 1  # the node's core, shared by its 2 ranks
        # The rendezvous listens on node 1's bridge address; Gloo uses the bridge, not lo.
        assert {p[6] for p in ranks} == {multinode.addresses[0]}, ranks
        assert {p[8] for p in ranks} != {"lo"} and "-" not in {p[8] for p in ranks}, ranks
    cores = {host: ranks[0][5] for host, ranks in by_host.items()}
    assert len(set(cores.values())) == 2, cores  # each node its own core


@pytest.fixture(scope="module")
def one_host_rows(tmp_path_factory, data_dir, slurm_env):
    """The 4-worker trial's rows with its 4 ranks on one node (the one-node cluster, its 2
    cores; the local launcher refuses more ranks than cores)."""
    directory = tmp_path_factory.mktemp("one-host")
    sweep = write_sweep(directory, "span", 4, "[1]")
    seconds = genbench(sweep, directory / "out", data_dir, *SLURM_ARGS, "--overcommit",
                       env=slurm_env)
    print(f"\n4-worker trial on 1 node (run --launcher slurm): {seconds:.0f} s wall, "
          f"load {Path('/proc/loadavg').read_text().split()[:3]}")
    return load_results(directory / "out" / "span").sort_values(schema.EPOCH)


def assert_same_rows(expected, got, who: str) -> None:
    got = got.sort_values(schema.EPOCH)
    assert got[KEYS].astype(str).values.tolist() == expected[KEYS].astype(str).values.tolist()
    np.testing.assert_allclose(got[VALUES].to_numpy(float), expected[VALUES].to_numpy(float),
                               rtol=1e-5, atol=1e-7, err_msg=who)


def test_four_ranks_on_two_nodes_via_slurm_launcher(multinode, one_host_rows, tmp_path,
                                                    data_dir):
    sweep = write_sweep(tmp_path, "span", 4, "[1]")
    seconds = genbench(sweep, tmp_path / "out", data_dir, *SLURM_ARGS, "--workers-per-node",
                       "2", "--overcommit", env=multinode.env)
    print(f"\n4-worker trial on 2 nodes (run --launcher slurm): {seconds:.0f} s wall, "
          f"load {Path('/proc/loadavg').read_text().split()[:3]}")
    assert_spans_two_nodes(multinode, tmp_path / "out", "span", tmp_path / "out" / "span")
    assert_same_rows(one_host_rows, load_results(tmp_path / "out" / "span"), "2 nodes")


def test_sbatch_template_with_two_nodes(multinode, one_host_rows, tmp_path, data_dir):
    sweep = write_sweep(tmp_path, "span", 4, "[1]")
    proc = subprocess.run(["sbatch", "--parsable", "--array=0", "-N", "2", "-n", "4",
                           "--overcommit", str(SBATCH_TEMPLATE), str(sweep), "--out",
                           str(tmp_path / "out"), "--data-dir", str(data_dir)],
                          capture_output=True, text=True, env=run_env(multinode.env),
                          cwd=tmp_path, timeout=60)
    assert proc.returncode == 0, proc.stderr
    job = proc.stdout.strip().split(";")[0]
    deadline = time.monotonic() + 1200
    while subprocess.run(["squeue", "-h", "-j", job], capture_output=True, text=True,
                         env=multinode.env).stdout.strip():
        assert time.monotonic() < deadline, "sbatch job still queued"
        time.sleep(2)
    trial_dir = next((tmp_path / "out" / "span" / "trials").iterdir())
    assert_spans_two_nodes(multinode, tmp_path / "out", "span", trial_dir)
    assert_same_rows(one_host_rows, load_results(tmp_path / "out" / "span"), "sbatch -N 2")


def job_of(out: Path, sweep: str) -> str:
    jobs = json.loads((out / sweep / "slurm" / "jobs.json").read_text())
    entries = jobs if isinstance(jobs, list) else jobs.get("jobs", list(jobs.values()))
    return str(entries[-1]["job_id"])


@pytest.mark.parametrize("failure", ["kill-node", "node-down"])
def test_a_node_that_dies_mid_trial(multinode, tmp_path, data_dir, failure):
    # Long after its first milestone (30 epochs of 1024 images, over a minute here), so that
    # the node dies mid-trial on a fast CPU too, with time left for Gloo's timeout.
    sweep = write_sweep(tmp_path, "die", 2, "[1, 2, 30]", images=1024)
    trial = load_sweep(str(sweep)).trials[0]
    store = TrialStore.of(tmp_path / "out", trial)
    args = [*SLURM_ARGS, "--workers-per-node", "1"]
    # Well below the time Slurm takes to declare the node down (SlurmdTimeout=60 s: 50-90 s
    # here), after which it requeues the job and kills the surviving rank before it could
    # record the failure (60 s lost that race once).
    env = {**multinode.env, "HOROVOD_GLOO_TIMEOUT_SECONDS": str(GLOO_TIMEOUT_S)}
    first = genbench(sweep, tmp_path / "out", data_dir, *args, env=env, wait=False)
    try:
        deadline = time.monotonic() + 900
        while not (store.result_path.exists() and 1 in store.ok_rows()):
            assert first.poll() is None, first.stdout.read()[-3000:]
            assert time.monotonic() < deadline, "the trial did not reach its first milestone"
            time.sleep(0.5)
        died = time.monotonic()
        if failure == "kill-node":
            multinode.kill_node(2)
        else:
            multinode.node_down(2)
        while store.rows()[-1][schema.STATUS] != schema.STATUS_FAILED:
            assert time.monotonic() - died < STOP_DEADLINE_S, "the surviving rank hangs"
            time.sleep(0.5)
        stopped = time.monotonic() - died
        print(f"\n{failure} 2: the surviving rank recorded the failure after {stopped:.0f} s "
              f"(load {Path('/proc/loadavg').read_text().split()[:3]})")
        # Rank 0 names the lost host in the failed row just after writing it.
        while "lost contact" not in (error := str(store.rows()[-1][schema.ERROR])):
            assert time.monotonic() - died < stopped + 60, error
            time.sleep(0.5)
        assert "host gbnode2 (rank 1)" in error, error
        subprocess.run(["scancel", job_of(tmp_path / "out", "die")], env=multinode.env,
                       timeout=60)
    finally:
        if failure == "node-down":
            multinode.node_up(2)
        multinode.restart()
        try:
            first.wait(timeout=600)
        finally:
            first.kill()
    genbench(sweep, tmp_path / "out", data_dir, *args, env=env)  # the re-run
    rows = store.rows()
    assert [r[schema.EPOCH] for r in rows] == [1, 2, 30]
    assert {r[schema.STATUS] for r in rows} == {schema.STATUS_OK}
    assert rows[-1][schema.HOSTS] == ",".join(multinode.nodes)
    assert rows[-1][schema.WARMUP_STEPS] > rows[0][schema.WARMUP_STEPS]  # resumed: 2 processes
