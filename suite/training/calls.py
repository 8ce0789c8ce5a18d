"""How many training steps one compiled call runs: the `steps_per_call` axis and `auto`.

Each call of the compiled training function costs a fixed overhead on top of
its steps: Python dispatch, launching the function, and the one host read of
its results (a device sync on a GPU). Running K steps per call divides that
overhead by K. `auto` measures both and picks the smallest K that makes the
overhead at most `DISPATCH_SHARE` of a call, which is 1 where a step already
takes 50x the overhead (big models, or a CPU). Pure Python: no TensorFlow, so
the choice is unit-testable.
"""

from __future__ import annotations

import math

AUTO = "auto"
MAX_STEPS_PER_CALL = 10_000  # the axis bound: far above any useful K
AUTO_MAX_STEPS_PER_CALL = 256  # auto never picks more (it bounds how late divergence is seen)
DISPATCH_SHARE = 0.02  # auto: the per-call overhead may cost at most this share of a call


def choose_steps_per_call(step_s: float, overhead_s: float, share: float = DISPATCH_SHARE,
                          cap: int = AUTO_MAX_STEPS_PER_CALL) -> int:
    """The smallest K in [1, cap] with overhead_s <= share x K x step_s.

    `step_s` is one step's device time (a warm call's time minus the overhead),
    `overhead_s` a call's fixed cost (an empty call's time). Unusable
    measurements (NaN, negative) give 1: the safe choice, as the loop then
    behaves like a plain per-step loop.
    """
    if not (math.isfinite(step_s) and math.isfinite(overhead_s)) or overhead_s <= 0:
        return 1
    if step_s <= 0:
        return cap
    k = math.ceil(overhead_s / (share * step_s) - 1e-9)
    return max(1, min(cap, k))


def call_sizes(steps: int, steps_per_call: int, warmup_calls: int = 0) -> list[int]:
    """The sizes of an epoch's calls: `warmup_calls` calls of one step (tracing is timed
    apart from training), then `steps_per_call`-step calls, the last one shorter."""
    if steps < 0 or steps_per_call < 1:
        raise ValueError(f"steps {steps} and steps_per_call {steps_per_call}: need >= 0, >= 1")
    sizes = [1] * min(max(0, warmup_calls), steps)
    left = steps - len(sizes)
    full, rest = divmod(left, steps_per_call)
    return sizes + [steps_per_call] * full + ([rest] if rest else [])


def steps_per_call_value(axis_value: int | str) -> int | None:
    """The fixed K of an axis value, or None for `auto`."""
    return None if axis_value == AUTO else int(axis_value)
