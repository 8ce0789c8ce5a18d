"""The lifecycle's tracker records a trial whose processes died without a row, also when
the process that held its lease died with a lost host (no TensorFlow, no training)."""

from __future__ import annotations

import json
import os
import time

import pytest

from suite.common.events import TRIAL_END, TRIAL_SKIP
from suite.launchers.base import TrialTracker
from suite.store import schema
from suite.store.lease import this_holder
from suite.store.states import STATE_BUSY
from suite.sweep.loader import load_sweep
from suite.trial.context import RunContext

SWEEP = """\
name: tracked
dataset: mnist
fixed: {model: dcgan, upsampling: nearest, latent_dim: 8, epochs: 2, workers: 2}
"""


@pytest.fixture
def trial_and_tracker(tmp_path):
    path = tmp_path / "tracked.yaml"
    path.write_text(SWEEP)
    trial = load_sweep(str(path)).trials[0]
    events = []
    tracker = TrialTracker(RunContext(out=tmp_path / "out"), events.append)
    return trial, tracker, events


def hold_lease_elsewhere(tracker: TrialTracker, trial, host: str) -> None:
    """The lease as a process on `host` left it: a fresh heartbeat, nobody behind it here."""
    lease = tracker.store(trial).lease()
    lease.path.parent.mkdir(parents=True, exist_ok=True)
    lease.path.write_text(json.dumps({**this_holder().__dict__, "host": host, "pid": 4242,
                                      "slurm_job": ""}))
    os.utime(lease.path, (time.time(), time.time()))


def test_a_live_holder_elsewhere_makes_the_trial_busy(trial_and_tracker):
    trial, tracker, events = trial_and_tracker
    hold_lease_elsewhere(tracker, trial, "node-b")
    result = tracker.end(trial, problem="the Ray Tune trial errored")
    assert result.skipped and result.status == STATE_BUSY
    assert "pid 4242 on node-b" in result.error
    assert events[-1].kind == TRIAL_SKIP
    assert tracker.store(trial).lease().path.exists()  # not ours to break


def test_a_holder_known_dead_is_broken_and_the_failure_recorded(trial_and_tracker):
    trial, tracker, events = trial_and_tracker
    hold_lease_elsewhere(tracker, trial, "node-b")
    problem = "the trial's Ray Tune process on host node-b (10.0.0.2) was lost"
    result = tracker.end(trial, problem=problem, holder_dead=lambda h: h.host == "node-b")
    assert not result.skipped and result.status == schema.STATUS_FAILED
    assert not tracker.store(trial).lease().path.exists()  # a re-run need not wait its TTL
    rows = tracker.store(trial).rows()
    assert rows[-1][schema.STATUS] == schema.STATUS_FAILED and "node-b" in rows[-1][schema.ERROR]
    assert events[-1].kind == TRIAL_END and events[-1].status == schema.STATUS_FAILED


def test_a_dead_process_that_is_not_the_holder_changes_nothing(trial_and_tracker):
    trial, tracker, _ = trial_and_tracker
    hold_lease_elsewhere(tracker, trial, "node-b")
    result = tracker.end(trial, problem="errored", holder_dead=lambda h: h.host == "node-c")
    assert result.status == STATE_BUSY and tracker.store(trial).lease().path.exists()
