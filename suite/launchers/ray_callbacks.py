"""The Ray Tune launcher's driver side: a Tune callback that tells the trial lifecycle's
tracker what Tune's trials do, and which hosts a lost Ray node took with it (so a lease
held by a process that died with its node is broken, not waited out)."""

from __future__ import annotations

from suite.common.events import EPOCH_END, Event
from suite.launchers.base import TrialTracker
from suite.sweep.spec import Trial
from suite.trial.context import trial_label

TRIAL_KEY = "genbench_trial"  # the one axis of the Tune grid: "<index:04d>-<trial id>"
LOSSES_KEY = "losses"  # Tune result: {"epoch": 3, "losses": {"loss_g": ...}} ("losses/loss_g")


def tune_key(trial: Trial) -> str:
    """A trial's value on the Tune grid: its index (for the lookup) and id (for people)."""
    return f"{trial.index:04d}-{trial.trial_id}"


def trial_index(config: dict) -> int:
    """The genbench trial index that a Tune trial's config stands for."""
    return int(str(config[TRIAL_KEY]).split("-", 1)[0])


def tune_trial_dirname(tune_trial) -> str:
    """Tune's name and directory for a trial: its grid value, from its own config alone.

    Module-level on purpose: Tune saves each trial's name creator with the trial's state,
    kept in the driver and rewritten at every experiment checkpoint. A closure over the
    sweep's trials was pickled into every one of them (0.6 MB per trial at 1,000 trials:
    the driver grew by that per trial, and the checkpoint by that squared); a function
    pickles as its name."""
    return str(tune_trial.config[TRIAL_KEY])


def event_bridge(by_index: dict[int, Trial], tracker: TrialTracker | None):
    """A Tune callback (in the driver) that tells the lifecycle's tracker when each Tune
    trial starts, reports an epoch, and ends (retries of a trial are one trial)."""
    from ray import tune

    class EventBridge(tune.Callback):
        def __reduce__(self):
            # Tuner pickles its run config (for Tuner.restore, unused here); the live
            # tracker (e.g. a rich console) does not pickle, and a copy has nobody to tell.
            return (event_bridge, (by_index, None))

        def on_trial_start(self, iteration, trials, trial, **info) -> None:
            if tracker is not None:
                tracker.start(by_index[trial_index(trial.config)])

        def on_trial_result(self, iteration, trials, trial, result, **info) -> None:
            t = by_index[trial_index(trial.config)]
            where[trial.trial_id] = (str(result.get("hostname") or ""),
                                     str(result.get("node_ip") or ""))
            losses = {k: float(v) for k, v in result.get(LOSSES_KEY, {}).items()}
            if tracker is not None:
                tracker.sink(Event(EPOCH_END, t.trial_id, trial_label(t),
                                   epoch=int(result["epoch"]), epochs=t.epochs, losses=losses))

        def on_trial_complete(self, iteration, trials, trial, **info) -> None:
            if tracker is not None:
                tracker.end(by_index[trial_index(trial.config)],
                            problem="the Ray Tune trial ended before the trial finished")

        def on_trial_recover(self, iteration, trials, trial, **info) -> None:
            if tracker is not None:  # Tune retries it: a lease its lost node held must go
                lost = lost_ray_hosts()
                tracker.live_holder(by_index[trial_index(trial.config)], lambda h: h.host in lost)

        def on_trial_error(self, iteration, trials, trial, **info) -> None:
            if tracker is None:
                return
            lost = lost_ray_hosts()
            host, address = where.get(trial.trial_id, ("", getattr(trial, "node_ip", "") or ""))
            host = host or next((h for h, a in lost.items() if a == address), "")
            problem = f"Ray Tune trial {trial.trial_id} errored; see {trial.path}"
            if host in lost:  # the trial's own process died with its node: nobody recorded
                problem = (f"the trial's Ray Tune process on host {host} ({address or lost[host]})"
                           f" was lost: its Ray node died. Fix: check {host}; re-running the "
                           "sweep resumes the trial from its last checkpoint")
            tracker.end(by_index[trial_index(trial.config)], problem=problem,
                        holder_dead=lambda h: h.host in lost)

    where: dict[str, tuple[str, str]] = {}  # Tune trial id -> its process's (hostname, IP)
    return EventBridge()


def lost_ray_hosts() -> dict[str, str]:
    """Hostname -> address of this Ray cluster's dead nodes that have no live node on the
    same host (a node that was restarted is not lost)."""
    import ray

    try:
        nodes = ray.nodes()
    except Exception:  # noqa: BLE001 - the GCS unreachable: nothing known lost, as before
        return {}
    alive = {n.get("NodeManagerHostname") for n in nodes if n.get("Alive")}
    return {n["NodeManagerHostname"]: n.get("NodeManagerAddress", "") for n in nodes
            if not n.get("Alive") and n.get("NodeManagerHostname") not in alive | {None, ""}}
