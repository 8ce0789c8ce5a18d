"""Clock maths over calls of K steps: rates, per-step percentiles, warm-up, wall time."""

from __future__ import annotations

import numpy as np
import pytest

from suite.training.clock import ThroughputClock, weighted_percentile


def test_rate_and_percentiles_come_from_call_times():
    clock = ThroughputClock(images_per_step=10, warmup_steps=2)
    clock.record_call(3.0, 1, epoch=1)  # tracing
    clock.record_call(0.5, 1, epoch=1)  # still warm-up
    clock.record_call(0.8, 8, epoch=1)  # 0.1 s per step
    clock.record_call(0.8, 4, epoch=1)  # 0.2 s per step: the short last call
    clock.record_epoch(1, 5.1, wall_seconds=9.0)
    s = clock.summary()
    assert s.images_per_sec == pytest.approx(10 * 12 / 1.6)
    # Per-step averages, each step of a call counted once: eight 100 ms and four 200 ms.
    assert s.step_time_p50_ms == pytest.approx(100.0)
    assert s.step_time_p95_ms == pytest.approx(np.percentile([100.0] * 8 + [200.0] * 4, 95))
    assert s.compile_time_s == pytest.approx(3.5) and s.warmup_steps == 2
    assert s.steps == 14 and s.calls == 4 and s.train_time_s == pytest.approx(5.1)
    # Steps-based epoch time: the two warm-up steps count as median steps.
    assert s.epoch_time_s == pytest.approx(5.1 - 3.5 + 2 * 0.1)
    assert s.epoch_wall_s == pytest.approx(9.0) and s.wall_time_s == pytest.approx(9.0)


def test_warm_up_is_per_process_and_wall_time_accumulates():
    clock = ThroughputClock(images_per_step=1, warmup_steps=1)
    clock.start_process()
    assert clock.warming and clock.warm_calls_left == 1
    clock.record_call(2.0, 1, epoch=1)
    assert not clock.warming
    clock.record_call(1.0, 10, epoch=1)
    clock.record_epoch(1, 3.0, wall_seconds=4.0)
    restored = ThroughputClock(images_per_step=1, warmup_steps=1)
    restored.load_state(clock.state())
    restored.start_process()  # a resumed process traces again
    restored.record_call(5.0, 1, epoch=2)
    restored.record_call(2.0, 10, epoch=2)
    restored.record_epoch(2, 7.0, wall_seconds=11.0)
    s = restored.summary()
    assert s.compile_time_s == pytest.approx(7.0) and s.warmup_steps == 2
    assert s.images_per_sec == pytest.approx(20 / 3.0)
    assert s.epoch_wall_s == pytest.approx(11.0)  # the latest epoch's
    assert s.wall_time_s == pytest.approx(15.0)  # every epoch's, across processes


def test_epoch_wall_defaults_to_the_calls_span():
    clock = ThroughputClock(images_per_step=1, warmup_steps=0)
    clock.record_call(1.0, 4, epoch=1)
    clock.record_epoch(1, 1.25)
    s = clock.summary()
    assert s.epoch_wall_s == pytest.approx(1.25) and s.epoch_time_s == pytest.approx(1.25)


def test_only_warm_up_gives_nan_rates_not_errors():
    clock = ThroughputClock(images_per_step=4, warmup_steps=2)
    clock.record_call(1.0, 1, epoch=1)
    s = clock.summary()
    assert np.isnan(s.images_per_sec) and np.isnan(s.step_time_p50_ms)
    assert s.compile_time_s == 1.0 and np.isnan(s.epoch_wall_s)


def test_checkpoints_of_the_one_step_clock_still_load():
    old = {"clock/step_times": np.array([4.0, 1.0, 0.5, 0.5]),
           "clock/step_warm": np.array([True, True, False, False]),
           "clock/step_epoch": np.array([1, 1, 1, 1]),
           "clock/epochs": np.array([1]), "clock/epoch_times": np.array([6.0])}
    clock = ThroughputClock(images_per_step=2)
    clock.load_state(old)
    s = clock.summary()
    assert s.steps == 4 and s.calls == 4 and s.images_per_sec == pytest.approx(4.0)
    assert s.epoch_wall_s == pytest.approx(6.0)


def test_weighted_percentile_repeats_values():
    assert weighted_percentile(np.array([1.0, 3.0]), np.array([3, 1]), 50) == 1.0
    assert np.isnan(weighted_percentile(np.array([]), np.array([], dtype=int), 50))
