"""The emulated multi-node cluster for integration tests (`slurm/local-cluster.sh start --nodes N`).

Every node is a network + UTS namespace on this machine (gbnode1, gbnode2, ...) with
its own address on a private bridge, its own hostname and its share of the cores; the
filesystem is shared, as on a cluster. The cluster gets its own GENBENCH_SLURM_DIR and
slurmctld port, so it runs beside the one-node cluster of the `slurm_env` fixture.

    cluster = start(nodes=2)        # skips where it cannot start; fails under CI=...
    subprocess.run(["srun", "-N", "2", "hostname"], env=cluster.env)
    env = cluster.ray_env()         # + Ray: head in gbnode1, a worker in every other node
    cluster.kill_node(2)            # node failure; cluster.restart() brings it back
    cluster.stop()                  # only what start() itself started
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CLUSTER_SCRIPT = REPO / "slurm" / "local-cluster.sh"
BIN = Path(sys.executable).parent
# Beside the one-node cluster (/var/lib/genbench-slurm, slurmctld on 6817).
DEFAULT_DIR = "/var/lib/genbench-slurm-nodes"
DEFAULT_CTLD_PORT = "6827"


def _unavailable(what: str, problem: str):
    reason = f"{what}: {problem}"
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


class Cluster:
    """A running multi-node cluster. `env` is the environment for its commands: SLURM_CONF,
    PATH (this venv first), GENBENCH, GENBENCH_SLURM_DIR and GENBENCH_SLURMCTLD_PORT (so that
    slurm/local-cluster.sh run with it addresses this cluster), GENBENCH_NODES and
    GENBENCH_NODE_ADDRS (comma-separated, node order), GENBENCH_CONTROLLER_ADDR."""

    def __init__(self, nodes: int, cluster_dir: str, ctld_port: str, started: bool):
        self.nodes_count = nodes
        self.dir = Path(cluster_dir)
        self.started = started  # by this process: stop() stops it
        self.ray_started = False
        env = {**os.environ, "GENBENCH_SLURM_DIR": cluster_dir,
               "GENBENCH_SLURMCTLD_PORT": ctld_port,
               "SLURM_CONF": str(self.dir / "slurm.conf"), "GENBENCH": str(BIN / "genbench"),
               "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
        conf = (self.dir / "slurm.conf").read_text()
        found = re.findall(r"^NodeName=(\S+) .*?NodeAddr=(\S+)", conf, re.M)
        self.nodes = [name for name, _ in found]
        self.addresses = [addr for _, addr in found]
        controller = re.search(r"^SlurmctldHost=\S+\((\S+)\)", conf, re.M)
        env.update(GENBENCH_NODES=",".join(self.nodes),
                   GENBENCH_NODE_ADDRS=",".join(self.addresses),
                   GENBENCH_CONTROLLER_ADDR=controller.group(1) if controller else "")
        self.env = env

    def script(self, *args: str, timeout: float = 180, check: bool = True):
        """Run slurm/local-cluster.sh ARGS for this cluster; raises with its output on failure."""
        proc = subprocess.run([str(CLUSTER_SCRIPT), *args], env=self.env, capture_output=True,
                              text=True, timeout=timeout, stdin=subprocess.DEVNULL)
        if check and proc.returncode != 0:
            raise RuntimeError(f"local-cluster.sh {' '.join(args)} failed ({proc.returncode}):\n"
                               f"{(proc.stdout + proc.stderr).strip()[-3000:]}")
        return proc

    def node_argv(self, k: int, *argv: str) -> list[str]:
        """argv that runs ARGV as a process of node K (its namespaces, hostname, cores)."""
        return [str(CLUSTER_SCRIPT), "exec", str(k), *argv]

    def ray_env(self) -> dict:
        """`env` plus RAY_ADDRESS, RAY_AUTH_MODE=token and RAY_AUTH_TOKEN_PATH, starting Ray on
        the nodes first if it is not up (head in node 1). Skips (fails under CI) if it cannot."""
        try:
            proc = self.script("ray-start", timeout=420)
        except (OSError, subprocess.TimeoutExpired, RuntimeError) as exc:
            _unavailable("Ray cannot start on the multi-node cluster", str(exc))
        if "already running" not in proc.stdout:
            self.ray_started = True
        env = dict(self.env)
        for line in (self.dir / "ray" / "env").read_text().splitlines():
            if line.startswith("export ") and "=" in line:
                key, value = line[len("export "):].split("=", 1)
                env[key] = value
        return env

    def node_down(self, k: int):
        """Take node K's link down: its processes live on, unreachable."""
        self.script("node-down", str(k))

    def node_up(self, k: int):
        self.script("node-up", str(k))

    def kill_node(self, k: int):
        """Kill every process of node K (slurmd, job steps, its Ray node)."""
        self.script("kill-node", str(k))

    def restart(self, ray: bool | None = None):
        """Bring killed nodes back: their slurmd, and their Ray node when Ray was up."""
        self.script("start", "--nodes", str(self.nodes_count), timeout=300)
        if ray or (ray is None and self.ray_started):
            self.script("ray-start", timeout=420)

    def stop(self):
        """Stop what start() and ray_env() started; leave a cluster found running as it was."""
        if self.started:
            self.script("stop", timeout=300, check=False)
        elif self.ray_started:
            self.script("ray-stop", timeout=120, check=False)


def start(nodes: int = 2, cluster_dir: str | None = None, ctld_port: str | None = None,
          timeout: float = 900) -> Cluster:
    """Start (or find running) the N-node cluster. Skips where it cannot start (e.g. not
    root, no network namespaces); fails instead under CI, which must run these tests."""
    cluster_dir = cluster_dir or os.environ.get("GENBENCH_MULTINODE_SLURM_DIR", DEFAULT_DIR)
    ctld_port = ctld_port or os.environ.get("GENBENCH_MULTINODE_SLURMCTLD_PORT", DEFAULT_CTLD_PORT)
    env = {**os.environ, "GENBENCH_SLURM_DIR": cluster_dir, "GENBENCH_SLURMCTLD_PORT": ctld_port}
    try:
        proc = subprocess.run([str(CLUSTER_SCRIPT), "start", "--nodes", str(nodes)], env=env,
                              capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)
        problem = "" if proc.returncode == 0 else (proc.stdout + proc.stderr).strip()[-2000:]
    except (OSError, subprocess.TimeoutExpired) as exc:
        problem = str(exc)
    if problem:
        _unavailable(f"the {nodes}-node Slurm cluster cannot start", problem)
    return Cluster(nodes, cluster_dir, ctld_port, started="already running" not in proc.stdout)
