"""genbench's trainer: dispatch overhead and K, the seed-style loop, fp32 vs bf16.

Prints, in one run:
1. the CPU flags that decide whether bfloat16 is native here (avx512_bf16 / amx_bf16);
2. at a small batch on a narrow DCGAN (the tutorial's at `width` 1/16), where
   per-call overhead shows even on a CPU: the overhead of one compiled call (an
   empty call: dispatch, launch, host read), per step at each K, and the
   trainer's images/s for each `steps_per_call` K;
3. the seed-style loop (the TensorFlow DCGAN tutorial's: a tf.function per batch,
   never reading the host) next to genbench's trainer (`steps_per_call: auto`)
   on the tutorial DCGAN at batch 256; genbench must not be slower;
4. the trainer's images/s at fp32 and mixed_bfloat16 side by side.

Every figure is measured the same way (warm-up excluded; best of `--repeats`,
runs interleaved so drifting machine load hits all alike); each section runs
in a fresh process.

    .venv/bin/python benchmarks/bench_trainer.py [--repeats 3] [--steps 20]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from suite.data.catalog import load_dataset  # noqa: E402
from suite.models import MODELS  # noqa: E402
from suite.models.networks import NetSpec  # noqa: E402
from suite.training.batches import EpochBatches  # noqa: E402
from suite.training.device_loop import DeviceLoop  # noqa: E402
from suite.training.loop import TrainConfig, train  # noqa: E402
from suite.training.replicas import SingleReplica  # noqa: E402

WARMUP = 2
# Each in a fresh process: state one section leaves behind (traced functions, tf.data
# threads) slowed the seed-style loop that ran after section 1 by a quarter.
SECTIONS = ("overhead", "seed-style", "precision")
BF16_FLAGS = ("avx512_bf16", "amx_bf16", "avx512f", "avx2")


def cpu_flags_line() -> str:
    """The model name and the bf16-relevant flags of this CPU (from /proc/cpuinfo)."""
    try:
        info = open("/proc/cpuinfo").read()
    except OSError:
        return "cpu: /proc/cpuinfo unreadable"
    model = next((line.split(":", 1)[1].strip() for line in info.splitlines()
                  if line.startswith("model name")), "?")
    flags = set(next((line.split(":", 1)[1].split() for line in info.splitlines()
                      if line.startswith("flags")), []))
    have = [f for f in BF16_FLAGS if f in flags]
    native = "native bf16" if {"avx512_bf16", "amx_bf16"} & flags else "NO bf16 instructions " \
             "(bf16 is emulated: expect it slower than fp32)"
    return f"cpu: {model}, {os.cpu_count()} cores; flags {' '.join(have) or '-'}: {native}"


def build(data, precision: str = "fp32", width: float = 1.0):
    """The tutorial DCGAN (transpose, kernel 5, z=100; `width` scales its channels), seeded."""
    keras.backend.clear_session()
    keras.utils.set_random_seed(0)
    spec = NetSpec(data.image_shape, 100, 0, "transpose", 5, precision, width=width)
    return MODELS.get("dcgan")(spec, 1e-4, 0)


def seed_style_loop(data, x, batch: int, epochs: int) -> float:
    """The study's loop: tf.function(train step) per batch, no host read until the end."""
    model = build(data)
    model.build_optimizers()
    step = tf.function(lambda a, b: model.train_batch(a, b, lambda g: g))
    batches = EpochBatches(x, None, batch, 0, model.pixel_range)
    it = iter(batches.for_epoch(1))
    for _ in range(WARMUP):
        out = step(*next(it))
    [float(v) for v in out.values()]
    steps = 0
    start = time.perf_counter()
    for epoch in range(1, epochs + 1):
        for images, labels in (it if epoch == 1 else batches.for_epoch(epoch)):
            out = step(images, labels)
            steps += 1
    [float(v) for v in out.values()]  # wait for the last step
    return steps * batch / (time.perf_counter() - start)


def genbench_trainer(data, x, batch: int, epochs: int, steps_per_call="auto",
                     precision: str = "fp32", width: float = 1.0) -> tuple[float, int]:
    """(images/s, K used) of suite.training.loop.train."""
    reports = []
    outcome = train(build(data, precision, width), x, None,
                    TrainConfig(epochs=epochs, milestones=(epochs,), batch_size=batch, seed=0,
                                warmup_steps=WARMUP, steps_per_call=steps_per_call),
                    on_milestone=reports.append)
    return reports[-1].clock.images_per_sec, outcome.steps_per_call


def call_overhead(data, x, batch: int, width: float) -> float:
    """Seconds of one compiled call that runs no step (best of many), after tracing."""
    model = build(data, width=width)
    model.build_optimizers()
    loop = DeviceLoop(model, SingleReplica())
    it = iter(EpochBatches(x, None, batch, 0, model.pixel_range).for_epoch(1))
    loop.run(it, 1)
    return loop.measure_overhead(it, repeats=50)


def best(runs: dict[str, list[float]], name: str) -> float:
    return max(runs[name])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="mnist")
    parser.add_argument("--batch", type=int, default=256, help="seed-style and precision runs")
    parser.add_argument("--steps", type=int, default=20, help="steps per epoch at --batch")
    parser.add_argument("--small-batch", type=int, default=4)
    parser.add_argument("--small-width", type=float, default=1 / 16)
    parser.add_argument("--small-steps", type=int, default=128, help="steps per epoch")
    parser.add_argument("--ks", default="1,4,16,64,auto", help="steps_per_call values to time")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--section", choices=SECTIONS,
                        help="run one section in this process (default: each in its own)")
    args, _ = parser.parse_known_args()
    if args.section is None:
        print(cpu_flags_line())
        print(f"TF {tf.__version__}, Keras {keras.__version__}; images/s are best of "
              f"{args.repeats}, warm-up excluded; each section in a fresh process")
        for section in SECTIONS:
            code = subprocess.run([sys.executable, __file__, *sys.argv[1:],
                                   "--section", section]).returncode
            if code:
                sys.exit(code)
        return
    data = load_dataset(args.dataset)
    {"overhead": overhead_section, "seed-style": seed_style_section,
     "precision": precision_section}[args.section](data, args)


def overhead_section(data, args) -> None:
    """1. Dispatch overhead and K, at a small batch."""
    small = data.x_train[:args.small_batch * args.small_steps]
    ks = [k if k == "auto" else int(k) for k in args.ks.split(",")]
    overhead = call_overhead(data, small, args.small_batch, args.small_width)
    runs: dict[str, list[float]] = {f"K={k}": [] for k in ks}
    auto_k = set()
    for _ in range(args.repeats):
        for k in ks:
            rate, used = genbench_trainer(data, small, args.small_batch, args.epochs,
                                          steps_per_call=k, width=args.small_width)
            runs[f"K={k}"].append(rate)
            if k == "auto":
                auto_k.add(used)
    print(f"\n[1] DCGAN at width {args.small_width:g}, batch {args.small_batch}: one compiled "
          f"call costs "
          f"{1e3 * overhead:.3f} ms beyond its steps (an empty call)")
    step_ms = {k: 1e3 * args.small_batch / best(runs, f"K={k}") for k in ks}
    for k in ks:
        per_call = min(auto_k) if k == "auto" else k
        label = f"auto (K={','.join(map(str, sorted(auto_k)))})" if k == "auto" else str(k)
        print(f"  steps_per_call {label:>10s}: {best(runs, f'K={k}'):8.1f} images/s, "
              f"{step_ms[k]:7.3f} ms/step, dispatch {1e3 * overhead / per_call:6.3f} ms/step")
    fixed = [k for k in ks if k != "auto"]
    print(f"  measured saving K={fixed[0]} -> K={fixed[-1]}: "
          f"{step_ms[fixed[0]] - step_ms[fixed[-1]]:.3f} ms/step")



def seed_style_section(data, args) -> None:
    """2. Seed-style loop vs genbench, batch 256, alternating in one fresh process."""
    x = data.x_train[:args.batch * args.steps]
    runs = {"seed-style loop": [], "genbench trainer": []}
    chosen = set()
    for _ in range(args.repeats):
        runs["seed-style loop"].append(seed_style_loop(data, x, args.batch, args.epochs))
        rate, k = genbench_trainer(data, x, args.batch, args.epochs)
        runs["genbench trainer"].append(rate)
        chosen.add(k)
    print(f"\n[2] tutorial DCGAN at batch {args.batch}, {args.steps} steps x {args.epochs} epochs "
          f"(genbench: steps_per_call auto -> K={sorted(chosen)})")
    for name, values in runs.items():
        print(f"  {name:18s} best {max(values):8.1f}   median {np.median(values):8.1f} images/s")
    ratio = best(runs, "genbench trainer") / best(runs, "seed-style loop")
    print(f"  genbench / seed-style = {ratio:.3f} ({'OK' if ratio >= 0.99 else 'SLOWER'})")



def precision_section(data, args) -> None:
    """3. fp32 vs mixed_bfloat16, alternating."""
    x = data.x_train[:args.batch * args.steps]
    runs = {"fp32": [], "mixed_bfloat16": []}
    for _ in range(args.repeats):
        for precision in runs:
            runs[precision].append(genbench_trainer(data, x, args.batch, args.epochs,
                                                    precision=precision)[0])
    fp32, bf16 = best(runs, "fp32"), best(runs, "mixed_bfloat16")
    print(f"\n[3] precision, genbench trainer at batch {args.batch}: fp32 {fp32:8.1f}   "
          f"mixed_bfloat16 {bf16:8.1f} images/s   bf16 / fp32 = {bf16 / fp32:.2f}")
    print(f"  ({cpu_flags_line()})")


if __name__ == "__main__":
    main()
