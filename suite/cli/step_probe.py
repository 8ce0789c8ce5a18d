"""A short measured run of each configuration's real training step, for `genbench plan
--measure` where no earlier rows of this machine know it: the trainer of every trial
(suite/training/loop.py) on the first images of the trial's dataset, one epoch of
PROBE_STEPS steps after its warm-up. TensorFlow is imported only here, only then."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from suite.cli.cost import StepTime, step_key

PROBE_STEPS = 24  # timed steps per configuration: a few calls of the trainer's K


def measure_step_times(trials: Sequence[Any], known: Mapping[tuple, StepTime],
                       data_dir: str | None = None) -> dict[tuple, StepTime]:
    """StepTime (source "measured") of each configuration of `trials` not in `known`;
    one real run per configuration, datasets loaded once."""
    todo: dict[tuple, Any] = {}
    for t in trials:
        todo.setdefault(step_key(t), t)
    datasets: dict[str, Any] = {}
    measured: dict[tuple, StepTime] = {}
    for key, trial in todo.items():
        if key in known:
            continue
        if trial.dataset not in datasets:
            from suite.data.catalog import load_dataset

            datasets[trial.dataset] = load_dataset(trial.dataset, data_dir)
        measured[key] = time_training_step(trial, datasets[trial.dataset])
    return measured


def time_training_step(trial: Any, data: Any) -> StepTime:
    """Seconds per step and warm-up seconds of `trial`'s model on one worker."""
    import keras

    from suite.models import MODELS, is_conditional
    from suite.models.networks import NetSpec
    from suite.training.loop import EpochReport, TrainConfig, train

    keras.backend.clear_session()
    keras.utils.set_random_seed(trial.seed)
    config = TrainConfig(epochs=1, milestones=(1,), batch_size=trial.batch_size,
                         seed=trial.seed, steps_per_call=trial.steps_per_call,
                         jit_compile=trial.jit_compile)
    n = trial.batch_size * (PROBE_STEPS + config.warmup_steps)
    x = data.x_train[:n]
    y = data.y_train[:n] if data.y_train is not None else None
    num_classes = data.num_classes if is_conditional(trial.model) else 0
    net = NetSpec(data.image_shape, trial.latent_dim, num_classes, trial.upsampling,
                  trial.kernel_size, trial.precision, depth=trial.depth, width=trial.width,
                  beta1=trial.beta1)
    model = MODELS.get(trial.model)(net, trial.lr_effective, trial.seed)
    reports: list[EpochReport] = []
    train(model, x, y, config, on_milestone=reports.append)
    clock = reports[-1].clock
    timed = max(clock.steps - clock.warmup_steps, 1)
    return StepTime((clock.train_time_s - clock.compile_time_s) / timed, clock.compile_time_s,
                    "measured")
