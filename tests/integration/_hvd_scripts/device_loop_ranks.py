"""Runs on each of 2 local Horovod ranks; test_device_loop.py reads what they wrote.

Trains a real DCGAN through `suite.training.loop.train` with K steps per call
and counts the collectives the trainer asks for: the replicas object is the
real HorovodReplicas, with each collective counted on its way through. Each
rank writes OUT_DIR/rank{r}.json. Usage: device_loop_ranks.py OUT_DIR DATA_DIR K PRECISION
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

from suite.ranks.entry import start_replicas
from suite.training.horovod import HorovodReplicas


class CountedReplicas(HorovodReplicas):
    """HorovodReplicas that counts each collective (and, per traced step, its tensors)."""

    def __init__(self, inner: HorovodReplicas) -> None:
        super().__init__(inner._hvd, inner.info)
        self.calls: Counter = Counter()
        self.traced_sizes: list[int] = []

    def average_gradients(self, grads: list) -> list:
        self.traced_sizes.append(len(grads))  # runs while a step is traced, not per step
        return super().average_gradients(grads)

    def allreduce_mean(self, value: float) -> float:
        self.calls["allreduce_mean"] += 1
        return super().allreduce_mean(value)

    def allreduce_max(self, value: float) -> float:
        self.calls["allreduce_max"] += 1
        return super().allreduce_max(value)

    def allreduce_max_many(self, values) -> list[float]:
        self.calls["allreduce_max_many"] += 1
        return super().allreduce_max_many(values)

    def barrier(self) -> None:
        self.calls["barrier"] += 1
        super().barrier()


def main(out_dir: str, data_dir: str, steps_per_call: str, precision: str) -> None:
    replicas = CountedReplicas(start_replicas())  # before any TF op: sizes thread pools
    import keras

    from suite.data.catalog import load_dataset
    from suite.models import MODELS
    from suite.models.networks import NetSpec
    from suite.training.loop import TrainConfig, train

    data = load_dataset("mnist", data_dir)
    x, y = data.x_train[:640], data.y_train[:640]  # 10 steps of 32 per rank and epoch
    keras.utils.set_random_seed(replicas.info.rank)  # different starts: the broadcast unifies
    model = MODELS.get("dcgan")(NetSpec((28, 28, 1), 8, 0, "nearest", 3, precision), 1e-3, 0)
    reports = []
    k = steps_per_call if steps_per_call == "auto" else int(steps_per_call)
    outcome = train(model, x, y, TrainConfig(epochs=2, milestones=(2,), batch_size=32, seed=0,
                                             steps_per_call=k), replicas=replicas,
                    on_epoch=reports.append)
    n_vars = sum(len(v) for _, v in model.optimizer_targets())
    result = {
        "rank": replicas.info.rank, "status": outcome.status, "digest": outcome.weights_digest,
        "losses": [r.losses for r in reports], "steps_per_call": outcome.steps_per_call,
        "calls": dict(replicas.calls), "traced_sizes": replicas.traced_sizes,
        "expected_size": n_vars + len(model.loss_names),
        "clock": [r.clock.__dict__ for r in reports],
    }
    (Path(out_dir) / f"rank{replicas.info.rank}.json").write_text(json.dumps(result))


if __name__ == "__main__":
    main(*sys.argv[1:5])
