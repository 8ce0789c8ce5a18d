"""Weak scaling on this machine: 1 rank vs N Horovod ranks, one thread each,
the same per-worker batch. Prints absolute images/s, the efficiency
T_N / (N x T_1), where T is global training throughput (warm-up excluded), and
where the lost time goes, from rank 0's Horovod timeline:

- negotiation: rank 0's gradients were ready, the other ranks' not yet (waiting
  for the slowest rank) plus Horovod's coordination;
- allreduce: the fused Gloo allreduce itself, with copies into and out of the
  fusion buffer;
- compute slowdown: the rest, i.e. the ranks' own steps ran slower than the one
  rank alone (they share the host's memory bandwidth, caches and clock boost).

Runs real `genbench run` sweeps in a temp directory, interleaved, without a
timeline (writing one slows rank 0 by a third here): 1 rank bound to one core
(the resources each of the N ranks gets: the baseline), 1 rank free to use every
core (what a single-worker trial gets), and N ranks bound to a core each
(`--bind cores`, the default) and unbound (`--bind none`); then the bound
N-worker trial again with `--timeline` for the split of the lost time.

    .venv/bin/python benchmarks/bench_scaling.py [--model dcgan] [--workers 2]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from analysis.load import load_results
from suite.store import schema

SWEEP = """
name: {name}
dataset: {dataset}
grid:
  workers: {workers}
fixed:
  model: {model}
  upsampling: transpose
  latent_dim: 100
  batch_size: {batch}
  epochs: {epochs}
  max_train_images: {images}
  steps_per_call: {k}
eval: {{n_samples: 500}}
"""

PHASES = {"negotiation": ("NEGOTIATE_ALLREDUCE",),
          "allreduce": ("GLOO_ALLREDUCE", "MEMCPY_IN_FUSION_BUFFER", "MEMCPY_OUT_FUSION_BUFFER")}


def timeline_ms_per_step(path: Path) -> dict[str, float]:
    """Median milliseconds rank 0 spent per collective in each phase of PHASES.

    The tensors of one fused allreduce have overlapping spans: merged, each step
    gives one interval per phase. The median skips the first steps, where one
    rank still compiles while the other waits.
    """
    text = path.read_text().strip()
    try:
        events = json.loads(text)
    except json.JSONDecodeError:  # Horovod leaves the array open while running
        events = json.loads(text.rstrip(",") + "]")
    stacks: dict[int, list[tuple[str, float]]] = {}  # B/E pairs nest, per tensor (pid)
    spans: dict[str, list[tuple[float, float]]] = {}
    for e in events:
        if e.get("ph") == "B":
            stacks.setdefault(e["pid"], []).append((e.get("name", ""), e["ts"]))
        elif e.get("ph") == "E" and stacks.get(e["pid"]):
            name, begun = stacks[e["pid"]].pop()
            spans.setdefault(name, []).append((begun, e["ts"]))
    out = {}
    for phase, names in PHASES.items():
        merged: list[list[float]] = []
        for a, b in sorted(s for n in names for s in spans.get(n, [])):
            if merged and a <= merged[-1][1] + 500:  # same collective (within 0.5 ms)
                merged[-1][1] = max(merged[-1][1], b)
            else:
                merged.append([a, b])
        durations = sorted(b - a for a, b in merged)
        out[phase] = durations[len(durations) // 2] / 1e3 if durations else float("nan")
    return out


def write_sweep(tmp: Path, name: str, workers: list[int], args) -> Path:
    sweep = tmp / f"{name}.yaml"
    # Each of the N ranks gets `steps` batches per epoch (weak scaling); the
    # 1-worker trial walks the same images in N times as many steps.
    sweep.write_text(SWEEP.format(name=name, dataset=args.dataset, workers=workers,
                                  model=args.model, batch=args.batch, epochs=args.epochs,
                                  images=args.batch * args.steps * args.workers,
                                  k=args.steps_per_call))
    return sweep


def start_sweep(tmp: Path, name: str, workers: list[int], args, *flags: str,
                cores: set[int] | None = None) -> subprocess.Popen:
    """`genbench run` of a weak-scaling sweep over `workers`, started.

    `cores` binds the whole run (and so a 1-worker trial, which runs in it) to them.
    """
    sweep = write_sweep(tmp, name, workers, args)
    env = {**os.environ, "GENBENCH_INTRA_OP_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "suite.cli.main", "run", str(sweep), "--out",
                             str(tmp), "--quiet", *flags], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True,
                            preexec_fn=(lambda: os.sched_setaffinity(0, cores)) if cores else None)


def finish_sweep(proc: subprocess.Popen, tmp: Path, name: str, args):
    """The final rows of a started sweep, indexed by workers."""
    _, err = proc.communicate()
    if proc.returncode:
        sys.exit(err[-3000:])
    df = load_results(tmp / name, deduplicate=False)
    return df[df[schema.EPOCH] == args.epochs].set_index(schema.WORKERS)


def run_sweep(tmp: Path, name: str, workers: list[int], args, *flags: str,
              cores: set[int] | None = None):
    """The final rows of a weak-scaling sweep over `workers`, indexed by workers."""
    return finish_sweep(start_sweep(tmp, name, workers, args, *flags, cores=cores),
                        tmp, name, args)


def run_side_by_side(tmp: Path, name: str, args, cores: list[int]):
    """One 1-worker sweep per core, all at once, each bound to its core: the final
    row of the slowest. The ranks' compute without any collective, sharing the host
    as N ranks do."""
    names = [f"{name}-{c}" for c in cores]
    procs = [start_sweep(tmp, n, [1], args, cores={c}) for n, c in zip(names, cores, strict=True)]
    rows = [finish_sweep(p, tmp, n, args).loc[1] for p, n in zip(procs, names, strict=True)]
    return min(rows, key=lambda r: r[schema.IMAGES_PER_SEC])


def step_ms(row, args) -> float:
    """Milliseconds per global step (every rank's batch once) from a row (indexed by workers)."""
    return 1e3 * row.name * args.batch / row[schema.IMAGES_PER_SEC]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="dcgan")
    parser.add_argument("--dataset", default="mnist")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch", type=int, default=64, help="per worker")
    parser.add_argument("--steps", type=int, default=40, help="steps per epoch per worker")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--steps-per-call", default="auto")
    parser.add_argument("--repeats", type=int, default=2,
                        help="rounds of every configuration, interleaved; each figure is the "
                             "best (other jobs on the host only ever slow a run down)")
    args = parser.parse_args()
    n = args.workers
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) < n:
        sys.exit(f"{n} ranks need {n} cores; this process may use {len(cores)}")
    # name: (workers, genbench run flags, cores of the whole run)
    configs = {
        "1 rank on 1 core": (1, (), {cores[0]}),
        "1 rank, free": (1, (), None),
        f"{n} ranks, bound": (n, ("--bind", "cores"), None),
        f"{n} ranks, unbound": (n, ("--bind", "none"), None),
    }
    alone = f"{n} x 1 rank at once"  # N independent 1-rank runs, a core each, no collective
    configs[alone] = (1, (), None)
    best: dict[str, object] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.repeats):
            for i, (label, (w, flags, bound)) in enumerate(configs.items()):
                if label == alone:
                    row = run_side_by_side(Path(tmp), f"alone-{r}", args, cores[:n])
                else:
                    row = run_sweep(Path(tmp), f"weak-scaling-{r}-{i}", [w], args, *flags,
                                    cores=bound).loc[w]
                if label not in best or row[schema.IMAGES_PER_SEC] > \
                        best[label][schema.IMAGES_PER_SEC]:
                    best[label] = row
        timed = run_sweep(Path(tmp), "timeline", [n], args, "--timeline", "--bind", "cores")
        timeline = Path(tmp) / "timeline" / "trials" / timed.loc[n, schema.TRIAL_ID] \
            / "timeline.json"
        phases = timeline_ms_per_step(timeline) if timeline.exists() else {}
    print(f"weak scaling, {args.model} on {args.dataset}, batch {args.batch} per worker, "
          f"one intra-op thread per rank, {len(cores)} cores, steps_per_call "
          f"{args.steps_per_call}, best of {args.repeats}")
    for label, row in best.items():
        print(f"  {label:22s} {row[schema.IMAGES_PER_SEC]:8.1f} images/s global, "
              f"{row[schema.IMAGES_PER_SEC_PER_WORKER]:8.1f} per worker, "
              f"step {step_ms(row, args):6.1f} ms, K={row[schema.STEPS_PER_CALL]}")
    one, free = best["1 rank on 1 core"], best["1 rank, free"]
    t1 = one[schema.IMAGES_PER_SEC]
    for label in (f"{n} ranks, bound", f"{n} ranks, unbound"):
        tn = best[label][schema.IMAGES_PER_SEC]
        print(f"  efficiency T{n} / ({n} x T1), {label}: {tn / (n * t1):.3f}  "
              f"(against the free 1-rank run: {tn / (n * free[schema.IMAGES_PER_SEC]):.3f})")
    if not phases:
        print("  (no Horovod timeline: cannot split the loss)")
        return
    negotiation, allreduce = phases["negotiation"], phases["allreduce"]
    # The timeline run's own step (slower: rank 0 writes the timeline) = compute + collectives.
    step_tl = step_ms(timed.loc[n], args)
    compute = step_tl - negotiation - allreduce
    step1 = step_ms(one, args)
    print(f"  where the time goes, bound (rank 0's Horovod timeline, a second {n}-rank run "
          f"whose step is {step_tl:.1f} ms with the timeline's own cost):")
    for name, ms in (("negotiation (waiting for the slowest rank)", negotiation),
                     ("fused Gloo allreduce + fusion-buffer copies", allreduce),
                     ("compute", compute)):
        print(f"    {name:45s} {ms:7.1f} ms/step  ({ms / step_tl:5.1%})")
    print(f"    compute vs 1 rank on 1 core ({step1:.1f} ms/step): {compute / step1:.2f}x "
          f"(includes the timeline's own cost on rank 0)")
    # Without a timeline: each rank's step = its compute beside the others + collectives.
    shared = step_ms(best[alone], args)
    stepn = step_ms(best[f"{n} ranks, bound"], args)
    rest = stepn - shared - negotiation - allreduce
    print(f"  where it goes without a timeline (ms per step of one rank): 1 rank alone "
          f"{step1:.1f}; {n} ranks' compute side by side, no collective {shared:.1f} "
          f"(+{shared - step1:.1f}: the host's shared caches and memory); {n} bound ranks "
          f"{stepn:.1f} = that + {negotiation + allreduce:.1f} in collectives (timeline) "
          f"+ {rest:.1f} more compute beside Horovod's runtime (its background and Gloo "
          f"threads share each rank's core)")
    print(f"  efficiency the host allows ({n} independent runs side by side): "
          f"{step1 / shared:.3f}; Horovod keeps {shared / stepn:.3f} of that")


if __name__ == "__main__":
    main()
