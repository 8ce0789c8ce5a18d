"""Ray Tune launcher: every trial of the sweep is one Tune trial, on embedded Ray or a cluster.

The Tune search space is a grid over genbench's own trial list (the trials' indices),
never a second grid definition. Each Tune trial reserves a placement group:

    workers == 1   [{CPU: c, GPU: g}]                 the trainable runs `run_trial` itself
    workers == N   [{}] + N x [{CPU: c, GPU: g}]      the trainable (no resources of its
                                                      own) runs N Horovod ranks as Ray
                                                      actors (suite.launchers.ray_ranks)
                                                      in the N bundles

Results go to the same parquet store as the local launcher (rank 0 writes under
--out, which must be a shared filesystem on a cluster); per-epoch losses are also
reported to Tune, whose own files live under <out>/<sweep>/ray/. Tune keeps every trial
of an experiment in the driver until the experiment ends, so a sweep of more than
--experiment-trials trials runs as consecutive experiments of that many: the driver's
memory is bounded by that, not by the sweep. The store, not
Tune's experiment state, decides what is left to do: a re-run starts a fresh Tune
experiment in which finished trials are skipped and interrupted ones resume from
their epoch checkpoint (Tuner.restore is not meant for a changed trial selection).

A failing trial raises in the trainable (after run_trial recorded it `failed`), so
Tune retries it up to `max_failures` times; the last attempt's `failed` row stays.
The lifecycle (skips, outcomes, events) is the base launcher's; Tune's callbacks
tell its tracker when each trial starts and ends.

Only this module, suite.launchers.ray_callbacks and suite.launchers.ray_ranks import Ray.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import logging
import os
import sys
import time
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from suite.common.errors import GenbenchError, SpecError
from suite.common.events import EPOCH_END, Event
from suite.launchers.base import Launcher, TrialTracker
from suite.launchers.options import check_choices, option
from suite.launchers.ray_callbacks import (
    LOSSES_KEY,
    TRIAL_KEY,
    event_bridge,
    trial_index,
    tune_key,
    tune_trial_dirname,
)
from suite.machine.cores import usable_cores
from suite.machine.threads import THREADS_ENV, configure_threads_from_env
from suite.store import schema
from suite.store.results import sweep_dir
from suite.store.trial_store import TrialStore
from suite.sweep.spec import Trial
from suite.trial.columns import config_columns
from suite.trial.context import RunContext, TrialResult
from suite.trial.run import run_trial

RAY_EXTRA = "pip install 'genbench[ray]'"
PLACEMENT_STRATEGIES = ("PACK", "SPREAD", "STRICT_PACK", "STRICT_SPREAD")  # Ray's
TUNE_NO_AUTO_LOGGERS = "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS"  # read by Tune's setup
TUNE_DIR = "ray"  # <out>/<sweep>/ray/<experiment>/: Tune's own results and logs
# Forwarded to every Ray worker: on a cluster they do not inherit this shell's environment.
FORWARDED_ENV_PREFIXES = ("GENBENCH_", "TF_CPP_", "KERAS_")


@dataclasses.dataclass(frozen=True)
class RayTuneOptions:
    address: str | None = option(None, "join this Ray cluster (e.g. auto, HOST:6379); "
                                       "default: an embedded Ray on this machine")
    max_concurrent: int | None = option(None, "at most K trials at once (default: as resources "
                                              "allow)", metavar="K")
    cpus_per_worker: float = option(1.0, "CPUs per worker (one bundle per Horovod rank)",
                                    metavar="C")
    gpus_per_worker: float = option(0.0, "GPUs per worker", metavar="G")
    max_failures: int = option(1, "retries of a failing trial before it is recorded failed",
                               metavar="F")
    experiment_trials: int = option(
        500, "trials per Tune experiment: Tune holds an experiment's every trial in the "
        "driver until it ends, so a larger sweep runs as consecutive experiments",
        metavar="N")
    dashboard: bool = option(False, "start the Ray dashboard on 127.0.0.1 (embedded Ray)")
    placement_strategy: str = option(
        "PACK", "how a trial's bundles spread over Ray nodes (SPREAD/STRICT_SPREAD: one "
        "rank per node)", metavar="S", choices=PLACEMENT_STRATEGIES)

    def __post_init__(self) -> None:
        where = "--launcher ray"
        check_choices(self, where)
        if self.max_concurrent is not None and self.max_concurrent < 1:
            raise SpecError(where, "max_concurrent", f"must be >= 1, got {self.max_concurrent}")
        if not self.cpus_per_worker > 0:
            raise SpecError(where, "cpus_per_worker", f"must be > 0, got {self.cpus_per_worker}")
        if self.gpus_per_worker < 0:
            raise SpecError(where, "gpus_per_worker", f"must be >= 0, got {self.gpus_per_worker}")
        if self.experiment_trials < 1:
            raise SpecError(where, "experiment_trials",
                            f"must be >= 1, got {self.experiment_trials}")
        if self.max_failures < 0:
            raise SpecError(where, "max_failures", f"must be >= 0, got {self.max_failures}")
        if self.dashboard and self.address:
            raise SpecError(where, "dashboard", "a joined cluster runs its own dashboard",
                            "start it with the head: `ray start --head --include-dashboard=true`")


def require_ray() -> Any:
    """Import Ray Tune, or explain which extra installs it."""
    try:
        importlib.import_module("ray.tune")
    except ImportError as exc:
        raise GenbenchError(f"the ray launcher needs Ray Tune, which is not installed ({exc})\n"
                            f"  fix: {RAY_EXTRA}") from None
    return importlib.import_module("ray")


def placement_bundles(workers: int, cpus: float, gpus: float) -> list[dict[str, float]]:
    """One bundle per worker; several workers add an empty head bundle for the trainable,
    which only waits for its rank actors (so N workers fit exactly N x cpus)."""
    bundle = {"CPU": cpus, **({"GPU": gpus} if gpus else {})}
    return [dict(bundle)] if workers == 1 else [{}] + [dict(bundle) for _ in range(workers)]


class RayTuneLauncher(Launcher):
    name = "ray"
    options_type = RayTuneOptions

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        require_ray()

    def _start(self, trials: list[Trial], ctx: RunContext, tracker: TrialTracker) -> None:
        # Tune trials run with another working directory, possibly on another host.
        ctx = dataclasses.replace(ctx, out=Path(ctx.out).resolve(), data_dir=(
            str(Path(ctx.data_dir).resolve()) if ctx.data_dir else ctx.data_dir))
        name = time.strftime("tune-%Y%m%d-%H%M%S")
        size = self.options.experiment_trials
        parts = [trials[i:i + size] for i in range(0, len(trials), size)]
        with self._ray_connection():
            for k, part in enumerate(parts):  # the driver keeps one part's Tune trials
                self._tune(part, ctx, tracker, name if len(parts) == 1 else f"{name}-{k:03d}")

    @contextlib.contextmanager
    def _ray_connection(self) -> Iterator[None]:
        """Join --address, or start Ray on this machine; reuse a connection the caller made."""
        ray = require_ray()
        if ray.is_initialized():
            yield
            return
        env = {k: v for k, v in os.environ.items() if k.startswith(FORWARDED_ENV_PREFIXES)}
        common = dict(log_to_driver=False, logging_level=logging.WARNING,
                      runtime_env={"env_vars": env} if env else None)
        if self.options.address:
            try:
                ray.init(address=self.options.address, **common)
            except ConnectionError as exc:
                raise GenbenchError(
                    f"--address {self.options.address}: no Ray cluster there ({exc})\n"
                    "  fix: start one (`ray start --head`, then `ray start --address=HEAD:6379` "
                    "on the other nodes), or leave out --address for an embedded Ray; if the "
                    "cluster uses token authentication, set RAY_AUTH_MODE=token") from None
        else:  # address="local": a new Ray even if `ray start` runs on this machine
            from suite.launchers.ray_ranks import init_loopback_ray

            init_loopback_ray(num_cpus=usable_cores(),  # every Ray server on 127.0.0.1
                              include_dashboard=self.options.dashboard,
                              dashboard_host="127.0.0.1", **common)
        try:
            yield
        finally:
            ray.shutdown()

    def _tune(self, trials: list[Trial], ctx: RunContext, tracker: TrialTracker,
              name: str) -> None:
        """One Tune experiment of `trials` (at most --experiment-trials of the sweep)."""
        from ray import tune

        opts = self.options
        by_index = {t.index: t for t in trials}
        bridge = event_bridge(by_index, tracker)

        def resources(config: dict) -> tune.PlacementGroupFactory:
            workers = by_index[trial_index(config)].workers
            return tune.PlacementGroupFactory(
                placement_bundles(workers, opts.cpus_per_worker, opts.gpus_per_worker),
                strategy=opts.placement_strategy)

        trainable = tune.with_resources(
            tune.with_parameters(tune_trainable, trials=by_index, ctx=ctx,
                                 cpus_per_worker=opts.cpus_per_worker,
                                 gpus_per_worker=opts.gpus_per_worker),
            resources=resources)
        storage = sweep_dir(ctx.out, trials[0].sweep) / TUNE_DIR
        tuner = tune.Tuner(
            trainable,
            param_space={TRIAL_KEY: tune.grid_search([tune_key(by_index[i])
                                                      for i in sorted(by_index)])},
            tune_config=tune.TuneConfig(max_concurrent_trials=opts.max_concurrent,
                                        # one TensorFlow import per worker, not per trial
                                        # (run_trial clears Keras' session and reseeds)
                                        reuse_actors=True,
                                        trial_name_creator=tune_trial_dirname,
                                        trial_dirname_creator=tune_trial_dirname),
            run_config=tune.RunConfig(
                storage_path=str(storage),
                name=name,
                failure_config=tune.FailureConfig(max_failures=opts.max_failures),
                callbacks=[bridge, *_tune_loggers()], verbose=0))
        with contextlib.redirect_stdout(sys.stderr), _env(TUNE_NO_AUTO_LOGGERS, "1"):
            grid = tuner.fit()  # (Tune's banner to stderr: stdout is for the table)
        if grid.num_errors + grid.num_terminated < len(trials):
            raise KeyboardInterrupt  # Tune stopped early (Ctrl-C): the CLI says how to resume
        for result in grid:  # trials whose end the callback did not see
            t = by_index[trial_index(result.config)]
            error = f"{type(result.error).__name__}: {result.error}" if result.error else ""
            tracker.end(t, problem=error or "the Ray Tune trial ended before the trial finished")


def _tune_loggers() -> list:
    """Tune's CSV and JSON files, not its TensorBoardX logger: its HParams experiment per
    Tune trial would compete with the sweep's (genbench's trials write event files)."""
    from ray.tune.logger import CSVLoggerCallback, JsonLoggerCallback

    return [CSVLoggerCallback(), JsonLoggerCallback()]


@contextlib.contextmanager
def _env(name: str, value: str) -> Iterator[None]:
    """`name=value` in this process's environment while Tune reads it."""
    old, os.environ[name] = os.environ.get(name), value
    try:
        yield
    finally:
        os.environ.pop(name) if old is None else os.environ.update({name: old})


# --- in the Tune trial's process ---------------------------------------------------------


class TrialFailedError(RuntimeError):
    """Raised by the trainable so that Tune retries the trial (it is already recorded)."""


class RankFailedError(RuntimeError):
    """Raised by a Horovod rank whose run_trial failed; `recorded` if it wrote the row."""

    def __init__(self, message: str, recorded: bool) -> None:
        super().__init__(message)
        self.recorded = recorded

    def __reduce__(self):  # keep `recorded` across Ray's pickling
        return (RankFailedError, (str(self), self.recorded))


def report_epoch(event: Event) -> None:
    """EventSink: per-epoch losses to Tune (so Tune's loggers and tools see them)."""
    if event.kind != EPOCH_END:
        return
    from ray import tune

    tune.report({"epoch": event.epoch, "epochs": event.epochs,
                 "genbench_trial_id": event.trial_id, LOSSES_KEY: dict(event.losses)})


def tune_trainable(config: dict, *, trials: dict[int, Trial], ctx: RunContext,
                   cpus_per_worker: float, gpus_per_worker: float) -> None:
    """Tune's function trainable: one genbench trial; raises when it failed, so Tune retries."""
    trial = trials[trial_index(config)]
    if trial.workers == 1:
        # TensorFlow's pool sized to the reservation, before its first op.
        os.environ.setdefault(THREADS_ENV, str(max(1, int(cpus_per_worker))))
        configure_threads_from_env()
        result = run_trial(trial, ctx, on_event=report_epoch)
    else:
        result = _run_ranks(trial, ctx, cpus_per_worker, gpus_per_worker)
    if result.status == schema.STATUS_FAILED:
        raise TrialFailedError(f"trial {trial.trial_id} failed: {result.error}")


def _run_ranks(trial: Trial, ctx: RunContext, cpus: float, gpus: float) -> TrialResult:
    """The trial's Horovod ranks as Ray actors in this Tune trial's bundles; rank 0 writes."""
    from ray.util.queue import Empty, Queue

    from suite.launchers.ray_ranks import run_ranks_on_ray

    events = Queue(actor_options={"num_cpus": 0})  # rank 0's epoch events, to Tune from here

    def forward_events() -> None:
        while True:
            try:
                report_epoch(events.get_nowait())
            except Empty:
                return

    try:
        results = run_ranks_on_ray(rank_main, (trial, ctx, events), num_workers=trial.workers,
                                   cpus_per_worker=cpus, gpus_per_worker=gpus,
                                   poll=forward_events)
        forward_events()
        return results[0]
    except Exception as exc:
        cause = getattr(exc, "cause", None) or exc  # a RayTaskError wraps the rank's error
        error = f"{type(cause).__name__}: {cause}"
        if not (isinstance(cause, RankFailedError) and cause.recorded):
            # With the environment rank 0 recorded when it started, not this process's.
            TrialStore.of(ctx.out, trial).record_failure(config_columns(trial), error,
                                                         traceback.format_exc())
        return TrialResult(trial.trial_id, schema.STATUS_FAILED, error=error)
    finally:
        events.shutdown()


def rank_main(trial: Trial, ctx: RunContext, events: Any) -> TrialResult:
    """One Horovod rank in a Ray actor (the Ray twin of suite.ranks.entry)."""
    from suite.ranks.entry import start_replicas

    replicas = start_replicas()  # Horovod, from the env ray_ranks set; before any TF op
    configure_threads_from_env()
    rank0 = replicas.info.rank == 0

    def sink(event: Event) -> None:
        if rank0 and event.kind == EPOCH_END:
            events.put(event)

    result = run_trial(trial, ctx, replicas=replicas, on_event=sink)
    if result.status == schema.STATUS_FAILED:  # raise, so the other ranks are stopped
        raise RankFailedError(result.error, recorded=rank0)
    return result
