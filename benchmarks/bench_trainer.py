"""genbench's trainer: dispatch overhead and K, the seed-style loop with MFU, fp32 vs bf16,
and the trainer options that decide how close a CPU step gets to the peak.

Prints, in one run:
1. the CPU flags that decide whether bfloat16 is native here (avx512_bf16 / amx_bf16);
2. at a small batch on a narrow DCGAN (the tutorial's at `width` 1/16), where
   per-call overhead shows even on a CPU: the overhead of one compiled call (an
   empty call: dispatch, launch, host read), per step at each K, and the
   trainer's images/s for each `steps_per_call` K;
3. the seed-style loop (the TensorFlow DCGAN tutorial's: a tf.function per batch,
   never reading the host) next to genbench's trainer (`steps_per_call: auto`)
   on the tutorial DCGAN at batch 32, 64 and 256: images/s and MFU side by side,
   against the fp32 matmul calibration peak (suite.machine.peak) measured between
   the runs of this process, and the cached calibration; genbench must not be slower;
4. the trainer's images/s at fp32 and mixed_bfloat16 side by side;
5. per demo model (and the tutorial DCGAN): images/s and MFU with the `nearest`
   block unfused (UpSampling2D + Conv2D) and fused (NearestUpConv2D, what `nearest`
   builds), each with and without XLA (`jit_compile` on the step);
6. per model, images/s with TensorFlow's oneDNN kernels on and off
   (`TF_ENABLE_ONEDNN_OPTS`, read once at import: each figure from its own process,
   the two settings alternating).

Every figure is measured the same way (warm-up excluded; best of `--repeats`,
runs interleaved so drifting machine load hits all alike); each section runs
in a fresh process.

    .venv/bin/python benchmarks/bench_trainer.py [--repeats 3] [--steps 20]
    .venv/bin/python benchmarks/bench_trainer.py --section options --models "demo"
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

from suite.data.catalog import load_dataset  # noqa: E402
from suite.machine.peak import calibrate_matmul_tflops, machine_peak, tf_threads  # noqa: E402
from suite.models import MODELS  # noqa: E402
from suite.models.flops import training_flops_per_image  # noqa: E402
from suite.models.networks import NetSpec  # noqa: E402
from suite.sweep.loader import load_sweep  # noqa: E402
from suite.training.batches import EpochBatches  # noqa: E402
from suite.training.device_loop import DeviceLoop  # noqa: E402
from suite.training.loop import TrainConfig, train  # noqa: E402
from suite.training.replicas import SingleReplica  # noqa: E402

WARMUP = 2
# Each in a fresh process: state one section leaves behind (traced functions, tf.data
# threads) slowed the seed-style loop that ran after section 1 by a quarter.
SECTIONS = ("overhead", "seed-style", "precision", "options", "onednn")
ONEDNN_CHILD = "onednn-child"  # one process's figures at one TF_ENABLE_ONEDNN_OPTS value
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
    parser.add_argument("--mfu-batches", default="32,64,256", help="[2] batch sizes")
    parser.add_argument("--images", type=int, default=2560,
                        help="[2] training images per epoch of each figure")
    parser.add_argument("--matmul", type=int, default=2048, help="calibration matmul size")
    parser.add_argument("--option-steps", type=int, default=24,
                        help="[4], [5] steps per timed call")
    parser.add_argument("--models", nargs="*", default=[],
                        help="[4], [5] only models whose name contains one of these")
    parser.add_argument("--section", choices=(*SECTIONS, ONEDNN_CHILD),
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
     "precision": precision_section, "options": options_section,
     "onednn": onednn_section, ONEDNN_CHILD: onednn_child}[args.section](data, args)


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


def calibrated_peak(best_so_far: float = 0.0) -> float:
    """TFLOP/s of suite.machine.peak's fp32 matmul calibration, measured now, in this process
    (interleaved with the runs, so load drift hits both), kept as the best seen."""
    return max(best_so_far, calibrate_matmul_tflops("fp32").tflops)


def seed_style_section(data, args) -> None:
    """2. Seed-style loop vs genbench: images/s and MFU at each batch, alternating in one
    fresh process, with the matmul peak calibrated between the runs."""
    batches = [int(b) for b in args.mfu_batches.split(",")]
    runs: dict[tuple[str, int], list[float]] = {}
    chosen: dict[int, set] = {b: set() for b in batches}
    peak = 0.0
    loads = []
    for _ in range(args.repeats):
        for batch in batches:
            x = data.x_train[:batch * max(4, args.images // batch)]
            loads.append(float(open("/proc/loadavg").read().split()[0]))
            runs.setdefault(("seed-style loop", batch), []).append(
                seed_style_loop(data, x, batch, args.epochs))
            rate, k = genbench_trainer(data, x, batch, args.epochs)
            runs.setdefault(("genbench trainer", batch), []).append(rate)
            chosen[batch].add(k)
            peak = calibrated_peak(peak)
    flops = training_flops_per_image(build(data))
    cached = machine_peak("fp32")
    print(f"\n[2] tutorial DCGAN ({flops / 1e9:.3f} GFLOP per training image), "
          f"{args.images} images x {args.epochs} epochs per figure; calibration peak "
          f"(fp32 {args.matmul}^2 matmul, {tf_threads()} threads, best in this run) "
          f"{1e3 * peak:.1f} GFLOP/s; cached calibration {1e3 * cached.tflops:.1f} GFLOP/s; "
          f"load {min(loads):.1f}-{max(loads):.1f}")
    print(f"  {'batch':>5s}  {'seed-style img/s':>16s} {'MFU':>6s}  {'genbench img/s':>14s} "
          f"{'MFU':>6s}  K    genbench/seed")
    for batch in batches:
        seed, ours = max(runs[("seed-style loop", batch)]), max(runs[("genbench trainer", batch)])
        mfu = [r * flops / 1e12 / peak for r in (seed, ours)]
        print(f"  {batch:5d}  {seed:16.1f} {mfu[0]:6.1%}  {ours:14.1f} {mfu[1]:6.1%}  "
              f"{','.join(map(str, sorted(chosen[batch]))):4s} {ours / seed:6.3f} "
              f"({'OK' if ours / seed >= 0.99 else 'SLOWER'})")


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


def demo_models() -> dict[str, tuple]:
    """The demo sweep's models as `make run` trains them, read from the sweep itself."""
    models = {}
    for t in load_sweep("demo").trials:
        models[f"demo {t.model} {t.upsampling}"] = (t.model, t.upsampling, t.kernel_size,
                                                    t.latent_dim, t.width, t.batch_size)
    return models


# The demo's models (suite/sweep/configs/demo.yaml) and the tutorial DCGAN, each with the
# options item 4 of the MFU work measured: (model, upsampling, kernel, latent, width, batch).
OPTION_MODELS = {
    **demo_models(),
    "tutorial dcgan b256": ("dcgan", "transpose", 5, 100, 1.0, 256),
    "tutorial-size dcgan nearest k5 b64": ("dcgan", "nearest", 5, 100, 1.0, 64),
}


def option_loop(data, x, name: str, fused: bool, jit: bool):
    """(DeviceLoop, iterator, batch, FLOPs/image) of one model and option, traced and warm."""
    model_name, upsampling, kernel, latent, width, batch = OPTION_MODELS[name]
    if upsampling == "nearest" and not fused:
        upsampling = "nearest_unfused"
    keras.backend.clear_session()
    keras.utils.set_random_seed(0)
    spec = NetSpec(data.image_shape, latent, 0, upsampling, kernel, width=width)
    model = MODELS.get(model_name)(spec, 1e-4, 0)
    model.build_optimizers()
    loop = DeviceLoop(model, SingleReplica(), jit_compile=jit)
    batches = EpochBatches(x, None, batch, 0, model.pixel_range)
    it = iter(batches.for_epoch(1).repeat())
    for _ in range(WARMUP):
        loop.run(it, 4)
    return loop, it, batch, training_flops_per_image(model)


def options_section(data, args) -> None:
    """4. Per model: images/s and MFU of each trainer option, interleaved in one process."""
    from suite.models import UPSAMPLERS

    if "nearest_unfused" not in UPSAMPLERS.names():  # `nearest` is the fused block
        UPSAMPLERS.add("nearest_unfused", "suite.models.upsampling:build_nearest_unfused")
    peak = 0.0
    x = data.x_train[:2048]
    names = selected_models(args)
    options = [(f, j) for j in (False, True) for f in (False, True)]
    runs: dict[tuple, list[float]] = {}
    flops: dict[str, int] = {}
    for _ in range(args.repeats):
        for name in names:
            for fused, jit in options:
                if fused and OPTION_MODELS[name][1] != "nearest":
                    continue
                loop, it, batch, flops[name] = option_loop(data, x, name, fused, jit)
                rate = images_per_sec(loop, it, args.option_steps, batch)
                runs.setdefault((name, fused, jit), []).append(rate)
        peak = calibrated_peak(peak)
    print(f"\n[4] trainer options, {args.option_steps} steps per figure, best of {args.repeats}, "
          f"interleaved; MFU against the calibration peak {1e3 * peak:.1f} GFLOP/s; "
          f"load {open('/proc/loadavg').read().split()[0]}")
    for name in names:
        base = max(runs[(name, False, False)])
        print(f"  {name} ({flops[name] / 1e9:.3f} GFLOP/image)")
        for (n, fused, jit), values in runs.items():
            if n != name:
                continue
            label = ("fused " if fused else "") + ("XLA" if jit else "") or "default"
            rate = max(values)
            mfu = rate * flops[name] / 1e12 / peak
            print(f"    {label:10s} {rate:8.1f} images/s  MFU {mfu:6.1%}  x{rate / base:.2f}")


def images_per_sec(loop, it, steps: int, batch: int) -> float:
    """Images/s of `steps` steps of a warm loop, timed around its calls."""
    started = time.perf_counter()
    loop.run(it, steps)
    return steps * batch / (time.perf_counter() - started)


def selected_models(args) -> list[str]:
    """The option models whose name contains one of --models (all without it)."""
    return [n for n in OPTION_MODELS if not args.models or any(m in n for m in args.models)]


def onednn_child(data, args) -> None:
    """One process's images/s per model, trainer defaults, as a JSON line on stdout."""
    x = data.x_train[:2048]
    rates = {}
    for name in selected_models(args):
        loop, it, batch, _ = option_loop(data, x, name, fused=True, jit=False)
        rates[name] = images_per_sec(loop, it, args.option_steps, batch)
    print(json.dumps(rates))


def onednn_section(data, args) -> None:
    """6. oneDNN on and off: alternating child processes, best of --repeats each."""
    runs: dict[str, dict[str, list[float]]] = {"1": {}, "0": {}}
    for _ in range(args.repeats):
        for flag in runs:
            env = {**os.environ, "TF_ENABLE_ONEDNN_OPTS": flag}
            child = subprocess.run([sys.executable, __file__, *sys.argv[1:], "--section",
                                    ONEDNN_CHILD], env=env, capture_output=True, text=True)
            if child.returncode:
                sys.exit(child.stderr[-2000:])
            for name, rate in json.loads(child.stdout.strip().splitlines()[-1]).items():
                runs[flag].setdefault(name, []).append(rate)
    print(f"\n[5] oneDNN (TF_ENABLE_ONEDNN_OPTS), trainer defaults, {args.option_steps} steps "
          f"per figure, best of {args.repeats}, one process per figure, settings alternating")
    for name in runs["1"]:
        on, off = max(runs["1"][name]), max(runs["0"][name])
        print(f"  {name:36s} on {on:8.1f}   off {off:8.1f} images/s   off / on = {off / on:.2f}")


if __name__ == "__main__":
    main()
