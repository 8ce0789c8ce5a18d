"""`genbench plan`'s estimate: calibrated by earlier rows of this machine, one-time costs
included, a range stated."""

from __future__ import annotations

import socket

import pytest

from suite.cli import cost as cost_model
from suite.cli.cost import OneTimeCost, StepTime, estimate_cost, step_key
from suite.cli.cost_sources import one_time_costs, rows_step_times
from suite.cli.main import main
from suite.cli.plan import plan_cost
from suite.store import schema
from suite.store.results import RESULT_FILE, trial_dir, write_rows
from suite.sweep.loader import load_sweep


def earlier_row(trial, seconds_per_step: float, compile_s: float, host: str) -> dict:
    """The final row a finished run of `trial` writes, with the step times given."""
    steps = cost_model.trial_steps(trial)
    return {schema.SCHEMA_VERSION_COL: schema.SCHEMA_VERSION, schema.SWEEP: trial.sweep,
            schema.TRIAL_ID: trial.trial_id, schema.TRIAL_INDEX: trial.index,
            **{name: getattr(trial, name) for name in cost_model.STEP_FIELDS},
            schema.EPOCHS: trial.epochs, schema.EPOCH: trial.epochs, schema.SEED: trial.seed,
            schema.STATUS: schema.STATUS_OK, schema.STEPS: steps, schema.WARMUP_STEPS: 2,
            schema.COMPILE_TIME_S: compile_s,
            schema.TRAIN_TIME_S: compile_s + (steps - 2) * seconds_per_step,
            schema.HOSTNAME: host, schema.DEVICE: "gpu: elsewhere x1",
            schema.TIMESTAMP: "2026-01-01T00:00:00+00:00"}


def write_earlier_run(root, trials, seconds_per_step=0.025, compile_s=3.0,
                      host=None) -> None:
    for t in trials:
        path = trial_dir(root, t.sweep, t.trial_id) / RESULT_FILE
        path.parent.mkdir(parents=True)
        write_rows(path, [earlier_row(t, seconds_per_step, compile_s,
                                      host or socket.gethostname())])


def test_rows_of_an_earlier_run_on_this_machine_calibrate_the_estimate(tmp_path):
    trials = load_sweep("demo").trials
    write_earlier_run(tmp_path, trials)
    known = rows_step_times(tmp_path)
    assert set(known) == {step_key(t) for t in trials}
    assert all(s.seconds_per_step == pytest.approx(0.025) for s in known.values())
    cost = plan_cost(trials, tmp_path)
    expected = sum(3.0 + cost_model.trial_steps(t) * 0.025 for t in trials)
    fixed = sum(c.seconds for c in cost.one_time)
    assert cost.sources == {"rows": len(trials)}
    assert cost.machine_hours * 3600 == pytest.approx(expected + fixed)
    assert cost.low_hours < cost.machine_hours < cost.high_hours


def test_rows_of_another_machine_are_not_used(tmp_path):
    trials = load_sweep("smoke").trials
    write_earlier_run(tmp_path, trials, host="some-other-node")
    assert rows_step_times(tmp_path) == {}
    assert plan_cost(trials, tmp_path).sources == {"table": len(trials)}


def test_small_networks_still_pay_a_step_and_a_warm_up():
    """At a few per cent of the tutorial's width the step is overhead, not convolution
    work: an estimate by images/s x 1/width^2 alone said 29 s for the demo."""
    demo = load_sweep("demo").trials
    floor = sum(cost_model.COMPILE_S + cost_model.trial_steps(t) * cost_model.PER_STEP_S
                for t in demo)
    assert estimate_cost(demo).machine_hours * 3600 > floor


def test_one_time_costs_only_when_the_cache_is_cold(tmp_path):
    trials = load_sweep("demo").trials
    cold = one_time_costs(trials, tmp_path)
    assert [c.what for c in cold] == ["domain classifier for mnist",
                                      "reference statistics mnist domain n=1000"]
    (tmp_path / "domain").mkdir()
    (tmp_path / "domain" / "mnist-v1-0123456789abcdef.weights.h5").write_bytes(b"")
    (tmp_path / "reference").mkdir()
    (tmp_path / "reference" / "mnist_test_holdout-eval_domain_domain-v1_n1000_x.npz"
     ).write_bytes(b"")
    assert one_time_costs(trials, tmp_path) == []
    with_fixed = estimate_cost(trials, one_time=[OneTimeCost("x", 120.0)])
    assert with_fixed.machine_hours == pytest.approx(estimate_cost(trials).machine_hours
                                                     + 120 / 3600)


def test_measured_step_times_take_precedence_over_the_table():
    trials = load_sweep("smoke").trials
    known = {step_key(t): StepTime(0.1, 1.0, "measured") for t in trials}
    cost = estimate_cost(trials, known)
    assert cost.sources == {"measured": 8}
    assert cost.machine_hours * 3600 == pytest.approx(8 * (1.0 + 32 * 0.1))
    assert cost.high_hours / cost.machine_hours == pytest.approx(
        cost_model.UNCERTAINTY["measured"])


def test_plan_prints_the_range_and_the_one_time_costs(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("GENBENCH_CACHE", str(tmp_path / "cache"))
    assert main(["plan", "demo", "--out", str(tmp_path / "none")]) == 0
    text = capsys.readouterr().out
    assert "likely" in text and "once: domain classifier for mnist" in text
    assert "4 from table" in text and "--measure" in text
