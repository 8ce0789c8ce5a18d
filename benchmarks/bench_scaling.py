"""Weak scaling on this machine: 1 rank vs N Horovod ranks, one thread each,
the same per-worker batch. Prints absolute images/s and the efficiency
T_N / (N x T_1), where T is global training throughput (warm-up excluded).

Runs real `genbench run` sweeps (workers [1, N]) in a temp directory.

    .venv/bin/python benchmarks/bench_scaling.py [--model dcgan] [--workers 2]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from suite import schema
from analysis.load import load_results

SWEEP = """
name: weak-scaling
dataset: {dataset}
grid:
  workers: [1, {workers}]
fixed:
  model: {model}
  upsampling: transpose
  latent_dim: 100
  batch_size: {batch}
  epochs: {epochs}
  max_train_images: {images}
eval: {{n_samples: 500}}
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="dcgan")
    parser.add_argument("--dataset", default="mnist")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch", type=int, default=64, help="per worker")
    parser.add_argument("--steps", type=int, default=40, help="steps per epoch per worker")
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        sweep = Path(tmp) / "scaling.yaml"
        # Each of the N ranks gets `steps` batches per epoch (weak scaling); the
        # 1-worker trial walks the same images in N times as many steps.
        sweep.write_text(SWEEP.format(dataset=args.dataset, workers=args.workers,
                                      model=args.model, batch=args.batch, epochs=args.epochs,
                                      images=args.batch * args.steps * args.workers))
        env = {**os.environ, "GENBENCH_INTRA_OP_THREADS": "1"}
        proc = subprocess.run([sys.executable, "-m", "suite.cli", "run", str(sweep), "--out",
                               tmp, "--quiet"], env=env, capture_output=True, text=True)
        if proc.returncode:
            sys.exit(proc.stderr[-3000:])
        df = load_results(Path(tmp) / "weak-scaling", deduplicate=False)
    final = df[df[schema.EPOCH] == args.epochs].set_index(schema.WORKERS)
    t1 = final.loc[1, schema.IMAGES_PER_SEC]
    tn = final.loc[args.workers, schema.IMAGES_PER_SEC]
    print(f"weak scaling, {args.model} on {args.dataset}, batch {args.batch} per worker, "
          f"one intra-op thread per rank, {os.cpu_count()} cores")
    for w in (1, args.workers):
        row = final.loc[w]
        print(f"  workers={w}: {row[schema.IMAGES_PER_SEC]:8.1f} images/s global, "
              f"{row[schema.IMAGES_PER_SEC_PER_WORKER]:8.1f} per worker, "
              f"step p50 {row[schema.STEP_TIME_P50_MS]:6.1f} ms (slowest rank)")
    print(f"  efficiency T{args.workers} / ({args.workers} x T1) = "
          f"{tn / (args.workers * t1):.3f}")


if __name__ == "__main__":
    main()
