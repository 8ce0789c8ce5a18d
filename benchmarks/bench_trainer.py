"""genbench's trainer vs a plain tf.function loop over the same model and data.

Prints images/s of both, measured the same way (warm-up excluded, wall clock
over the same number of steps), side by side in one run. The trainer should
not be slower: its per-step work beyond the compiled step is a scalar fetch
(for the divergence check) and a clock tick.

    .venv/bin/python benchmarks/bench_trainer.py [--model dcgan] [--steps 60] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from suite.data import load_dataset  # noqa: E402
from suite.models import MODELS, is_conditional  # noqa: E402
from suite.models.networks import NetSpec  # noqa: E402
from suite.training.batches import EpochBatches  # noqa: E402
from suite.training.loop import TrainConfig, train  # noqa: E402

WARMUP = 2


def build(model: str, data):
    keras.utils.set_random_seed(0)
    classes = data.num_classes if is_conditional(model) else 0
    return MODELS.get(model)(NetSpec(data.image_shape, 100, classes, "transpose", 5), 1e-4, 0)


def plain_loop(model_name: str, data, x, y, batch: int, epochs: int) -> float:
    """The baseline: tf.function(train_batch) over the same batches, no bookkeeping."""
    model = build(model_name, data)
    model.build_optimizers()
    step = tf.function(lambda a, b: model.train_batch(a, b, lambda g: g))
    batches = EpochBatches(x, y, batch, 0, model.pixel_range)
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


def genbench_trainer(model_name: str, data, x, y, batch: int, epochs: int) -> float:
    reports = []
    train(build(model_name, data), x, y,
          TrainConfig(epochs=epochs, milestones=(epochs,), batch_size=batch, seed=0,
                      warmup_steps=WARMUP), on_milestone=reports.append)
    return reports[-1].clock.images_per_sec


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="dcgan")
    parser.add_argument("--dataset", default="mnist")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=60, help="steps per epoch")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    data = load_dataset(args.dataset)
    n = args.batch * args.steps
    x, y = data.x_train[:n], data.y_train[:n]
    print(f"{args.model} on {args.dataset}: batch {args.batch}, {args.steps} steps x "
          f"{args.epochs} epochs, best of {args.repeats} (images/s, higher is better)")
    results = {"plain tf.function loop": [], "genbench trainer": []}
    for _ in range(args.repeats):  # interleaved, so drift in machine load hits both
        results["plain tf.function loop"].append(
            plain_loop(args.model, data, x, y, args.batch, args.epochs))
        results["genbench trainer"].append(
            genbench_trainer(args.model, data, x, y, args.batch, args.epochs))
    for name, values in results.items():
        print(f"  {name:24s} best {max(values):8.1f}   median {np.median(values):8.1f}")
    ratio = max(results["genbench trainer"]) / max(results["plain tf.function loop"])
    print(f"  trainer / plain = {ratio:.3f}")


if __name__ == "__main__":
    main()
