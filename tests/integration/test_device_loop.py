"""K steps per compiled call: same results for every K, one trace, honest divergence
reports, `auto`, and one fused collective per step (real Horovod, 2 Gloo ranks)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

from analysis.load import load_results
from suite.models import MODELS
from suite.models.networks import NetSpec
from suite.ranks.local import run_local_command
from suite.store import schema
from suite.sweep.spec import EvalSpec, Trial
from suite.training.batches import EpochBatches
from suite.training.calls import call_sizes
from suite.training.device_loop import DeviceLoop
from suite.training.loop import TrainConfig, train
from suite.training.replicas import SingleReplica
from suite.trial.context import RunContext
from suite.trial.run import run_trial

RANKS_SCRIPT = Path(__file__).resolve().parent / "_hvd_scripts" / "device_loop_ranks.py"


def build(name: str, lr: float = 1e-3, seed: int = 0, precision: str = "fp32"):
    # As the worker does per trial: graph node names (and with them the order grappler sums
    # gradients in, hence the last bits) then do not depend on what the process built before.
    keras.backend.clear_session()
    keras.utils.set_random_seed(seed)
    classes = 10 if name.startswith("c") else 0
    return MODELS.get(name)(NetSpec((28, 28, 1), 8, classes, "nearest", 3, precision), lr, seed)


def all_values(model) -> list[np.ndarray]:
    return [np.asarray(v) for v in model.variables] + [
        np.asarray(v) for opt in model.optimizers for v in opt.variables]


@pytest.mark.parametrize("name", ["dcgan", "cvae"])
def test_k1_and_k8_give_identical_weights(mnist, name):
    """Dropout, latent noise and shuffling are all seeded: the only difference between
    the runs is how many steps each compiled call runs, and that must change nothing."""
    x, y = mnist.x_train[:832], mnist.y_train[:832]  # 13 steps of 64: 8 does not divide it
    runs = {}
    for k in (1, 8):
        model, reports = build(name), []
        outcome = train(model, x, y, TrainConfig(epochs=2, milestones=(2,), batch_size=64,
                                                 seed=5, steps_per_call=k),
                        on_epoch=reports.append)
        assert outcome.status == "ok" and outcome.steps_per_call == k
        runs[k] = (all_values(model), [r.losses for r in reports], reports[-1].clock)
    for a, b in zip(runs[1][0], runs[8][0], strict=True):
        np.testing.assert_array_equal(a, b)
    assert runs[1][1] == runs[8][1]  # epoch losses too, to the last bit
    # K=8 over 13-step epochs: [1, 1, 8, 3] then [8, 5] (warm-up calls are one step).
    assert runs[8][2].calls == 6 and runs[8][2].steps == 26 and runs[8][2].warmup_steps == 2
    assert runs[1][2].calls == 26


def test_one_trace_for_every_call_size_and_epoch(mnist):
    model = build("vae")
    model.build_optimizers()
    batches = EpochBatches(mnist.x_train[:640], mnist.y_train[:640], 64, 0, model.pixel_range)
    loop = DeviceLoop(model, SingleReplica())
    ran = 0
    for epoch in (1, 2):
        iterator = iter(batches.for_epoch(epoch))
        for n in call_sizes(batches.steps_per_epoch, 4, warmup_calls=2 if epoch == 1 else 0):
            result = loop.run(iterator, n)
            assert result.steps == n and result.finite
            ran += n
        assert loop.run(iterator, 0).steps == 0  # an empty call: the overhead probe
    assert ran == 20 and loop.traces == 1
    assert loop.measure_overhead(iterator, repeats=3) < 1.0


@pytest.mark.parametrize("name", ["dcgan", "vae"])
def test_trials_in_one_process_leave_no_traced_graph_behind(mnist, name):
    """The local launcher runs one-worker trials in its own process, and a Ray actor runs
    trial after trial: a finished trial's traced step must be freed, or the process grows
    by megabytes per trial (it did: Keras' replica sum registered a gradient per trace)."""
    import gc

    from tensorflow.python.framework.func_graph import FuncGraph

    def one_trial() -> None:
        model = build(name)
        model.build_optimizers()
        batches = EpochBatches(mnist.x_train[:128], mnist.y_train[:128], 64, 0,
                               model.pixel_range)
        assert DeviceLoop(model, SingleReplica()).run(iter(batches.for_epoch(1)), 2).steps == 2

    def graphs() -> int:
        gc.collect()
        return sum(isinstance(o, FuncGraph) for o in gc.get_objects())

    one_trial()
    before = graphs()
    for _ in range(3):
        one_trial()
    assert graphs() <= before


def test_divergence_names_the_call_window(mnist):
    x, y = mnist.x_train[:1024], mnist.y_train[:1024]
    outcome = train(build("vae", lr=1e9), x, y,
                    TrainConfig(epochs=5, milestones=(5,), batch_size=64, seed=0,
                                steps_per_call=8))
    assert outcome.status == "diverged", outcome
    first, last = outcome.nonfinite_steps
    assert 1 <= first <= last <= 16 and last - first < 8
    step = int(outcome.error.split("step ")[1].split()[0].rstrip(":"))
    assert first <= step <= last  # the device found the exact step inside the window
    assert "non-finite loss" in outcome.error


def test_auto_records_a_k_that_matches_the_calls(mnist):
    x, y = mnist.x_train[:1024], mnist.y_train[:1024]
    reports = []
    outcome = train(build("dcgan"), x, y,
                    TrainConfig(epochs=2, milestones=(2,), batch_size=64, seed=0,
                                steps_per_call="auto"), on_epoch=reports.append)
    k = outcome.steps_per_call
    assert outcome.status == "ok" and 1 <= k <= 256 and reports[-1].steps_per_call == k
    expected = len(call_sizes(16, k, 2)) + len(call_sizes(16, k, 0))
    assert reports[-1].clock.calls == expected


class RecordingReplicas(SingleReplica):
    """The one-process replicas, recording what each step hands to the collective."""

    def __init__(self) -> None:
        super().__init__()
        self.reduced: list[int] = []

    def average_gradients(self, grads: list) -> list:
        self.reduced.append(len(grads))  # once per traced step body
        return super().average_gradients(grads)


@pytest.mark.parametrize("name", ["cgan", "vae"])
def test_a_step_reduces_all_gradients_and_losses_at_once(mnist, name):
    model, replicas = build(name), RecordingReplicas()
    train(model, mnist.x_train[:256], mnist.y_train[:256],
          TrainConfig(epochs=1, milestones=(1,), batch_size=64, seed=0, steps_per_call=2),
          replicas=replicas)
    n_vars = sum(len(variables) for _, variables in model.optimizer_targets())
    assert replicas.reduced == [n_vars + len(model.loss_names)]


def test_diverged_row_carries_the_window(tmp_path, data_dir):
    trial = Trial(sweep="t", index=0, dataset="mnist", model="vae", upsampling="nearest",
                  latent_dim=8, epochs=3, milestones=(3,), seed=0, batch_size=32, lr=10.0,
                  lr_scaling="none", kernel_size=3, workers=1, max_train_images=512,
                  eval=EvalSpec(n_samples=32, backbones=()), steps_per_call=4,
                  precision="mixed_bfloat16")
    result = run_trial(trial, RunContext(out=tmp_path, data_dir=str(data_dir)))
    assert result.status == "diverged", result
    row = load_results(tmp_path / "t", deduplicate=False).iloc[-1]
    assert row[schema.STATUS] == "diverged" and row[schema.STEPS_PER_CALL] == 4
    first, last = row[schema.NONFINITE_STEPS_FROM], row[schema.NONFINITE_STEPS_TO]
    assert 1 <= first <= last <= 16 and row[schema.PRECISION] == "mixed_bfloat16"
    assert f"epoch {row[schema.EPOCH]}, step" in row[schema.ERROR]


@pytest.mark.skipif(importlib.util.find_spec("horovod") is None,
                    reason="Horovod is not installed: run tools/install-horovod.sh")
def test_two_ranks_one_fused_collective_per_step(tmp_path, data_dir):
    timeline = tmp_path / "timeline.json"
    code = run_local_command([sys.executable, str(RANKS_SCRIPT), str(tmp_path), str(data_dir),
                              "4", "fp32"], 2, tmp_path / "ranks.log", timeline=timeline)
    assert code == 0, (tmp_path / "ranks.log").read_text()[-4000:]
    r0, r1 = (json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1))
    for r in (r0, r1):
        assert r["status"] == "ok" and r["steps_per_call"] == 4
        # The step body hands every gradient (G and D) and both losses to one collective.
        assert r["traced_sizes"] == [r["expected_size"]]
        # Per epoch: the throughput summary is one collective, plus the end-of-epoch barrier.
        assert r["calls"] == {"allreduce_max_many": 2, "barrier": 2}
    assert r0["digest"] == r1["digest"] and r0["losses"] == r1["losses"]
    assert r0["clock"] == r1["clock"]  # the slowest rank's figures, on every rank
    # The timeline: each step's tensors went through Gloo together, in one fused allreduce.
    starts = sorted(e["ts"] for e in _timeline_events(timeline)
                    if e.get("ph") == "B" and e.get("name") == "GLOO_ALLREDUCE")
    groups: list[list[int]] = []
    for ts in starts:
        if groups and ts - groups[-1][-1] < 1000:  # microseconds
            groups[-1].append(ts)
        else:
            groups.append([ts])
    # Groups of more than 2: the epoch's throughput summary and its barrier are one tensor
    # each and can run back to back within 1 ms, which is not a fused step.
    fused = [len(g) for g in groups if len(g) > 2]
    assert fused == [r0["expected_size"]] * 20  # 2 epochs x 10 steps
    # 2 summaries + 2 barriers, one tensor each
    assert sum(len(g) for g in groups if len(g) <= 2) == 4


def _timeline_events(path: Path) -> list[dict]:
    text = path.read_text().strip()
    try:
        return json.loads(text)
    except json.JSONDecodeError:  # Horovod leaves the array open while running
        return json.loads(text.rstrip(",") + "]")


def test_xla_step_trains_like_the_graph_step(mnist, monkeypatch):
    """`jit_compile`: the step runs XLA-compiled inside the device loop (one trace), and
    trains the same model from the same start as the plain graph step does, to float
    rounding (XLA fuses and reorders the arithmetic)."""
    import suite.training.loop as loop_module

    built = []

    class Recorded(DeviceLoop):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            built.append(getattr(self._train_batch, "_jit_compile", None))

    monkeypatch.setattr(loop_module, "DeviceLoop", Recorded)
    x = mnist.x_train[:512]
    losses = {}
    for jit in (False, True):
        model, reports = build("vae"), []
        outcome = train(model, x, None, TrainConfig(epochs=2, milestones=(2,), batch_size=64,
                                                    seed=3, steps_per_call=4, jit_compile=jit),
                        on_epoch=reports.append)
        assert outcome.status == "ok"
        losses[jit] = [r.losses["elbo"] for r in reports]
    assert built == [None, True]  # the plain step is no separate function; XLA's is
    assert losses[True][1] > losses[True][0]  # the ELBO rises: it trains
    np.testing.assert_allclose(losses[True], losses[False], rtol=0.02)
