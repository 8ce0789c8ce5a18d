"""The per-trial overhead of the Ray launcher against the local launcher, and driver memory.

Builds a tiny npz dataset (256 grey 8x8 images: the domain backbone trains on them
once), a sweep of N trials that differ only in their seed (DCGAN at width 1/16, 1
epoch of 2 steps, 10 eval samples on the `domain` backbone), and runs it with
`genbench run --launcher local`, then `--launcher ray` (embedded Ray), each in its
own process and results directory. Prints, side by side:

- wall/trial: the launcher's wall time over N (the process start and preflight,
  shared by all trials, included);
- in-trial: the mean time the rows account for (`wall_time_s + eval_time_s` of
  each trial's last row: training and evaluation);
- overhead/trial: wall/trial minus in-trial, what the launcher costs per trial
  (Ray runs one trial at a time by default here, `--ray-concurrent`, so both
  columns mean the same thing);
- the driver's peak RSS and its RSS after 10%, 50% and 100% of the trials (from
  psutil sampling of the `genbench run` process, children excluded): bounded
  means it stops growing with the number of trials.

With `--parallel` the launchers run at once, each pinned to its own core (its
processes and Ray's inherit the affinity, and genbench sizes threads and Ray's CPUs
by it): the same conditions for both, in half the wall time of running them one
after the other on all cores, which is what makes 1,000 trials of each fit a session.

    .venv/bin/python benchmarks/bench_launchers.py [--trials 1000] [--launchers local,ray]
        [--parallel]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import psutil

SWEEP = """\
name: tiny
dataset: npz:{npz}
grid:
  seed: [{seeds}]
fixed:
  model: dcgan
  upsampling: nearest
  latent_dim: 4
  width: 0.0625
  epochs: 1
  batch_size: 32
  max_train_images: 64
eval: {{n_samples: 10, batch_size: 10, backbones: [domain]}}
"""


@dataclass
class Sampler:
    """RSS of one process, sampled every `period` seconds on a thread."""

    pid: int
    period: float = 0.25
    samples: list[tuple[float, int]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        proc = psutil.Process(self.pid)
        while not self._stop.is_set():
            try:
                self.samples.append((time.monotonic(), proc.memory_info().rss))
            except psutil.Error:
                return
            self._stop.wait(self.period)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def write_dataset(path: Path) -> None:
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(256, 8, 8), dtype=np.uint8)
    y = rng.integers(0, 10, size=256, dtype=np.uint8)
    np.savez(path, x_train=x, y_train=y, x_test=x, y_test=y)


def trial_finish_times(sweep_dir: Path) -> list[float]:
    """When each trial's result file was last written (monotonic clock not available)."""
    return sorted(p.stat().st_mtime for p in sweep_dir.glob("trials/*/result.parquet"))


def in_trial_seconds(sweep_dir: Path) -> list[float]:
    import pandas as pd

    from suite.store import schema

    times = []
    for path in sweep_dir.glob("trials/*/result.parquet"):
        last = pd.read_parquet(path).iloc[-1]
        times.append(float(last[schema.WALL_TIME_S]) + float(last[schema.EVAL_TIME_S]))
    return times


def run_launcher(launcher: str, sweep: Path, root: Path, ray_concurrent: int,
                 cpu: int | None = None) -> dict:
    """Run the sweep with one launcher; `cpu` pins it (and all its children) to that core."""
    out = root / f"out-{launcher}"
    cmd = [sys.executable, "-m", "suite.cli.main", "run", str(sweep), "--out", str(out),
           "--launcher", launcher, "--quiet"]
    if launcher == "ray" and ray_concurrent:
        cmd += ["--max-concurrent", str(ray_concurrent)]
    env = {**os.environ, "GENBENCH_CACHE": str(root / "cache"), "TF_CPP_MIN_LOG_LEVEL": "2"}
    start_wall = time.time()
    started = time.monotonic()
    pin = None if cpu is None else (lambda: os.sched_setaffinity(0, {cpu}))
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL,
                            stderr=open(root / f"{launcher}.log", "w"), preexec_fn=pin)
    sampler = Sampler(proc.pid)
    code = proc.wait()
    wall = time.monotonic() - started
    sampler.stop()
    if code != 0:
        raise SystemExit(f"{launcher}: genbench run exited {code}; see {root}/{launcher}.log")
    sweep_out = out / "tiny"
    finished = [t - start_wall for t in trial_finish_times(sweep_out)]
    return {"wall": wall, "in_trial": in_trial_seconds(sweep_out), "finished": finished,
            "rss": [(t - started, rss) for t, rss in sampler.samples]}


def rss_at(samples: list[tuple[float, int]], when: float) -> float:
    """The last RSS sampled before `when` (seconds since start), in MiB."""
    before = [rss for t, rss in samples if t <= when] or [samples[0][1]]
    return before[-1] / 2**20


def report(name: str, n: int, r: dict) -> list[str]:
    in_trial = float(np.mean(r["in_trial"]))
    per_trial = r["wall"] / n
    fin = r["finished"]
    marks = [fin[max(0, int(len(fin) * q) - 1)] for q in (0.1, 0.5, 1.0)]
    rss = [rss_at(r["rss"], t) for t in marks]
    peak = max(s for _, s in r["rss"]) / 2**20
    return [name, f"{r['wall']:.1f}", f"{per_trial:.3f}", f"{in_trial:.3f}",
            f"{per_trial - in_trial:.3f}", f"{peak:.0f}",
            " / ".join(f"{v:.0f}" for v in rss)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=1000)
    parser.add_argument("--launchers", default="local,ray")
    parser.add_argument("--ray-concurrent", type=int, default=1,
                        help="--max-concurrent of the Ray run (0: as resources allow)")
    parser.add_argument("--parallel", action="store_true",
                        help="run the launchers at once, each pinned to its own core")
    parser.add_argument("--keep", action="store_true", help="keep the results directory")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-launchers-"))
    npz = root / "tiny.npz"
    write_dataset(npz)
    sweep = root / "tiny.yaml"
    sweep.write_text(SWEEP.format(npz=npz, seeds=", ".join(map(str, range(args.trials)))))
    print(f"{args.trials} trials, load {open('/proc/loadavg').read().split()[:3]}, "
          f"{psutil.cpu_count()} cpus; results in {root}", flush=True)
    rows = [["launcher", "wall s", "wall/trial s", "in-trial s", "overhead/trial s",
             "driver peak MiB", "driver MiB at 10%/50%/100%"]]
    launchers = args.launchers.split(",")
    if args.parallel:
        cpus = sorted(os.sched_getaffinity(0))[: len(launchers)]
        if len(cpus) < len(launchers):
            raise SystemExit(f"--parallel needs a core per launcher: {len(cpus)} for {launchers}")
        pinned = list(zip(launchers, cpus, strict=True))
        print("  in parallel, " + ", ".join(f"{n} on cpu {c}" for n, c in pinned), flush=True)
        with concurrent.futures.ThreadPoolExecutor(len(launchers)) as pool:
            futures = [pool.submit(run_launcher, name, sweep, root, args.ray_concurrent, cpu)
                       for name, cpu in pinned]
            results = [f.result() for f in futures]
    else:
        results = [run_launcher(name, sweep, root, args.ray_concurrent) for name in launchers]
    for launcher, result in zip(launchers, results, strict=True):
        rows.append(report(launcher, args.trials, result))
        print(f"  {launcher} done in {result['wall']:.0f} s", flush=True)
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)))
    print(f"load after: {open('/proc/loadavg').read().split()[:3]}")
    if not args.keep:
        import shutil

        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
