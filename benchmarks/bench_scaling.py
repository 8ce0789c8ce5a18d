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

Runs real `genbench run` sweeps in a temp directory: workers [1, N] for the
throughput (without a timeline: writing one slows rank 0 by a third here), then
the N-worker trial again with `--timeline` for the split of the lost time.

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
from suite import schema

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


def run_sweep(tmp: Path, name: str, workers: list[int], args, *flags: str):
    """The final rows of a weak-scaling sweep over `workers`, indexed by workers."""
    sweep = tmp / f"{name}.yaml"
    # Each of the N ranks gets `steps` batches per epoch (weak scaling); the
    # 1-worker trial walks the same images in N times as many steps.
    sweep.write_text(SWEEP.format(name=name, dataset=args.dataset, workers=workers,
                                  model=args.model, batch=args.batch, epochs=args.epochs,
                                  images=args.batch * args.steps * args.workers,
                                  k=args.steps_per_call))
    env = {**os.environ, "GENBENCH_INTRA_OP_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "suite.cli", "run", str(sweep), "--out",
                           str(tmp), "--quiet", *flags], env=env, capture_output=True, text=True)
    if proc.returncode:
        sys.exit(proc.stderr[-3000:])
    df = load_results(tmp / name, deduplicate=False)
    return df[df[schema.EPOCH] == args.epochs].set_index(schema.WORKERS)


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
                        help="sweeps of [1, N] workers; each figure is the best (other jobs on "
                             "the host only ever slow a run down)")
    args = parser.parse_args()
    n = args.workers
    with tempfile.TemporaryDirectory() as tmp:
        runs = [run_sweep(Path(tmp), f"weak-scaling-{r}", [1, n], args)
                for r in range(args.repeats)]
        final = max(runs, key=lambda f: f.loc[1, schema.IMAGES_PER_SEC]).copy()
        final.loc[n] = max(runs, key=lambda f: f.loc[n, schema.IMAGES_PER_SEC]).loc[n]
        timed = run_sweep(Path(tmp), "timeline", [n], args, "--timeline")
        timeline = Path(tmp) / "timeline" / "trials" / timed.loc[n, schema.TRIAL_ID] \
            / "timeline.json"
        phases = timeline_ms_per_step(timeline) if timeline.exists() else {}
    t1 = final.loc[1, schema.IMAGES_PER_SEC]
    tn = final.loc[n, schema.IMAGES_PER_SEC]
    print(f"weak scaling, {args.model} on {args.dataset}, batch {args.batch} per worker, "
          f"one intra-op thread per rank, {os.cpu_count()} cores, steps_per_call "
          f"{args.steps_per_call}, best of {args.repeats}")
    for w in (1, n):
        row = final.loc[w]
        print(f"  workers={w}: {row[schema.IMAGES_PER_SEC]:8.1f} images/s global, "
              f"{row[schema.IMAGES_PER_SEC_PER_WORKER]:8.1f} per worker, "
              f"step p50 {row[schema.STEP_TIME_P50_MS]:6.1f} ms (slowest rank), "
              f"K={row[schema.STEPS_PER_CALL]}")
    # At equal per-worker batch, efficiency = step_1 / step_N.
    step1, stepn = 1e3 * args.batch / t1, 1e3 * n * args.batch / tn
    print(f"  efficiency T{n} / ({n} x T1) = {tn / (n * t1):.3f}  (per step: {step1:.1f} ms "
          f"alone, {stepn:.1f} ms with {n} ranks)")
    if not phases:
        print("  (no Horovod timeline: cannot split the loss)")
        return
    negotiation, allreduce = phases["negotiation"], phases["allreduce"]
    # The timeline run's own step (slower: rank 0 writes the timeline) = compute + collectives.
    step_tl = 1e3 * n * args.batch / timed.loc[n, schema.IMAGES_PER_SEC]
    compute = step_tl - negotiation - allreduce
    print(f"  where the time goes (rank 0's Horovod timeline, a second {n}-rank run whose step "
          f"is {step_tl:.1f} ms with the timeline's own cost):")
    for name, ms in (("negotiation (waiting for the slowest rank)", negotiation),
                     ("fused Gloo allreduce + fusion-buffer copies", allreduce),
                     ("compute", compute)):
        print(f"    {name:45s} {ms:7.1f} ms/step  ({ms / step_tl:5.1%})")
    print(f"    compute vs 1 rank alone ({step1:.1f} ms/step): {compute / step1:.2f}x "
          f"(ranks share the host's cores, caches and memory bandwidth)")


if __name__ == "__main__":
    main()
