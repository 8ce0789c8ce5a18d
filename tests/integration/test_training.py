"""The one trainer: it learns, resumes exactly, clocks honestly, and stops divergence."""

from __future__ import annotations

import time

import keras
import numpy as np
import pytest

from suite.models import MODELS
from suite.models.networks import NetSpec
from suite.training.clock import ThroughputClock
from suite.training.loop import TrainConfig, train


@pytest.fixture(scope="module")
def mnist_slice(mnist):
    return mnist.x_train[:1024], mnist.y_train[:1024]


def build(name: str, lr: float = 1e-3, seed: int = 0, upsampling: str = "nearest"):
    keras.backend.clear_session()  # as the worker does: fresh graph names per trial
    keras.utils.set_random_seed(seed)  # as the worker does: seeded initial weights
    classes = 10 if name.startswith("c") else 0
    return MODELS.get(name)(NetSpec((28, 28, 1), 8, classes, upsampling, 3), lr, seed)


def test_short_run_lowers_the_loss(mnist_slice):
    x, y = mnist_slice
    history = []
    outcome = train(build("vae"), x, y, TrainConfig(epochs=3, milestones=(3,), batch_size=64,
                                                    seed=0), on_epoch=history.append)
    assert outcome.status == "ok" and [r.epoch for r in history] == [1, 2, 3]
    elbo = [r.losses["elbo"] for r in history]
    assert elbo[2] > elbo[0] + 20, elbo  # nats per image: a clear improvement
    clock = history[-1].clock
    assert clock.steps == 3 * 16 and clock.warmup_steps == 2
    assert clock.images_per_sec > 0 and clock.compile_time_s > clock.step_time_p50_ms / 1e3


def test_gan_losses_move_and_milestones_fire(mnist_slice):
    x, y = mnist_slice
    reached = []
    outcome = train(build("cgan", lr=2e-4), x, y,
                    TrainConfig(epochs=2, milestones=(1, 2), batch_size=64, seed=1),
                    on_milestone=reached.append)
    assert outcome.status == "ok" and [r.epoch for r in reached] == [1, 2]
    assert all(set(r.losses) == {"loss_g", "loss_d"} for r in reached)


def test_resume_from_checkpoint_matches_an_uninterrupted_run(mnist_slice, tmp_path):
    x, y = mnist_slice
    x, y = x[:512], y[:512]
    config = TrainConfig(epochs=2, milestones=(2,), batch_size=64, seed=3)
    straight, straight_seen = build("dcgan", seed=3), []
    train(straight, x, y, config, on_epoch=straight_seen.append)

    ckpt = tmp_path / "checkpoint.npz"
    first = build("dcgan", seed=3)
    train(first, x, y, TrainConfig(epochs=1, milestones=(1,), batch_size=64, seed=3), ckpt)
    resumed = build("dcgan", seed=3)
    seen = []
    outcome = train(resumed, x, y, config, ckpt, on_epoch=seen.append)
    assert outcome.resumed_from == 1 and [r.epoch for r in seen] == [2]
    assert seen[0].clock.steps == 16  # 8 steps restored from the checkpoint + 8 new
    assert seen[0].losses == straight_seen[-1].losses  # the epoch's row is the same row
    for a, b in zip(straight.variables, resumed.variables, strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-5,
                                   err_msg=a.path)


def test_non_finite_loss_stops_the_trial_as_diverged(mnist_slice):
    x, y = mnist_slice
    outcome = train(build("vae", lr=1e9), x, y,
                    TrainConfig(epochs=5, milestones=(5,), batch_size=64, seed=0))
    assert outcome.status == "diverged"
    assert "non-finite loss" in outcome.error and outcome.epoch <= 5


def test_clock_excludes_warmup_and_counts_images():
    clock = ThroughputClock(images_per_step=100, warmup_steps=2)
    for t in (5.0, 1.0, 0.1, 0.1, 0.1, 0.3):
        clock.record_step(t, epoch=1)
    clock.record_epoch(1, 6.7)
    s = clock.summary()
    assert s.compile_time_s == pytest.approx(6.0)
    assert s.images_per_sec == pytest.approx(400 / 0.6)
    assert s.step_time_p50_ms == pytest.approx(100.0)
    assert s.epoch_time_s == pytest.approx(6.7 - 6.0 + 2 * 0.1)
    assert s.train_time_s == pytest.approx(6.6) and s.steps == 6
    # A new process (a resume) traces again: its first steps are warm-up too.
    clock.start_process()
    clock.record_step(4.0, epoch=2)
    assert clock.summary().compile_time_s == pytest.approx(10.0)


def test_epoch_wall_time_holds_setup_and_compilation(mnist_slice):
    """The first epoch's wall time counts from when the process took up the trial, so
    setup before training (here 60 s of it, far above what load can add to an epoch) and
    compilation show in the row."""
    x, y = mnist_slice
    seen = []
    train(build("vae"), x[:512], y[:512],
          TrainConfig(epochs=2, milestones=(2,), batch_size=64, seed=0, steps_per_call=4,
                      started_at=time.perf_counter() - 60.0), on_epoch=seen.append)
    first, second = seen[0].clock, seen[1].clock
    assert first.epoch_wall_s >= 60.0 + first.train_time_s
    assert first.epoch_time_s < first.train_time_s  # steps-based: compilation left out
    # Later epochs hold no setup: the 60 s is far above one 8-step epoch (~3 s here) plus
    # its milestone evaluation, whatever the load, and the first epoch's share of compute
    # (which the milestone epoch may exceed) plays no part.
    assert second.epoch_wall_s < 60.0
    assert second.wall_time_s == pytest.approx(first.epoch_wall_s + second.epoch_wall_s)
    assert second.wall_time_s >= second.train_time_s
