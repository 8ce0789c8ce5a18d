"""The `auto` choice of K (steps per compiled call) and how an epoch is cut into calls."""

from __future__ import annotations

import math

import pytest

from suite.training.calls import (
    AUTO,
    AUTO_MAX_STEPS_PER_CALL,
    DISPATCH_SHARE,
    call_sizes,
    choose_steps_per_call,
    steps_per_call_value,
)


@pytest.mark.parametrize("step_s, overhead_s", [
    (0.5, 0.0003),  # a DCGAN step on a CPU: one step hides dispatch many times over
    (0.015, 0.0003),  # exactly 50x the overhead: the share is met at K=1
    (1e-9, 1e-9 * DISPATCH_SHARE * 0.5),
])
def test_auto_is_one_where_a_step_already_hides_dispatch(step_s, overhead_s):
    assert choose_steps_per_call(step_s, overhead_s) == 1


@pytest.mark.parametrize("step_s, overhead_s, expected", [
    (0.002, 0.0003, 8),  # 0.3 ms / (2% x 2 ms) = 7.5 -> 8
    (0.001, 0.0004, 20),  # exactly 20: no rounding up past it
    (0.0001, 0.0005, 250),
])
def test_auto_picks_the_smallest_k_that_hides_dispatch(step_s, overhead_s, expected):
    k = choose_steps_per_call(step_s, overhead_s)
    assert k == expected
    assert overhead_s <= DISPATCH_SHARE * k * step_s * (1 + 1e-9)
    assert k == 1 or overhead_s > DISPATCH_SHARE * (k - 1) * step_s


def test_auto_is_capped_and_safe_on_bad_measurements():
    assert choose_steps_per_call(1e-7, 1e-3) == AUTO_MAX_STEPS_PER_CALL
    assert choose_steps_per_call(0.0, 1e-3) == AUTO_MAX_STEPS_PER_CALL  # free steps
    assert choose_steps_per_call(-1e-3, 1e-3) == AUTO_MAX_STEPS_PER_CALL
    assert choose_steps_per_call(1e-3, 1e-3, share=0.5, cap=3) == 2
    for step_s, overhead_s in ((math.nan, 1e-3), (1e-3, math.inf), (1e-3, 0.0), (1e-3, -1.0)):
        assert choose_steps_per_call(step_s, overhead_s) == 1


@pytest.mark.parametrize("steps, k, warm, expected", [
    (16, 8, 0, [8, 8]),
    (20, 8, 0, [8, 8, 4]),  # epochs need not divide by K: the last call is shorter
    (20, 8, 2, [1, 1, 8, 8, 2]),  # warm-up calls run one step each
    (3, 8, 2, [1, 1, 1]),
    (1, 8, 2, [1]),
    (5, 1, 2, [1, 1, 1, 1, 1]),
    (0, 4, 2, []),
])
def test_call_sizes_cover_the_epoch(steps, k, warm, expected):
    sizes = call_sizes(steps, k, warm)
    assert sizes == expected and sum(sizes) == steps


def test_call_sizes_refuse_nonsense():
    with pytest.raises(ValueError):
        call_sizes(10, 0)
    with pytest.raises(ValueError):
        call_sizes(-1, 4)


def test_axis_values():
    assert steps_per_call_value(AUTO) is None
    assert steps_per_call_value(8) == 8
