"""The Ray Tune launcher's driver side: a Tune callback that tells the trial lifecycle's
tracker what Tune's trials do, and which hosts a lost Ray node took with it (so a lease
held by a process that died with its node is broken, not waited out)."""

from __future__ import annotations

from suite.common.events import EPOCH_END, Event
from suite.launchers.base import TrialTracker
from suite.sweep.spec import Trial
from suite.trial.context import trial_label

TRIAL_KEY = "genbench_trial_index"  # the one axis of the Tune grid
LOSSES_KEY = "losses"  # Tune result: {"epoch": 3, "losses": {"loss_g": ...}} ("losses/loss_g")


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
                tracker.start(by_index[trial.config[TRIAL_KEY]])

        def on_trial_result(self, iteration, trials, trial, result, **info) -> None:
            t = by_index[trial.config[TRIAL_KEY]]
            where[trial.trial_id] = (str(result.get("hostname") or ""),
                                     str(result.get("node_ip") or ""))
            losses = {k: float(v) for k, v in result.get(LOSSES_KEY, {}).items()}
            if tracker is not None:
                tracker.sink(Event(EPOCH_END, t.trial_id, trial_label(t),
                                   epoch=int(result["epoch"]), epochs=t.epochs, losses=losses))

        def on_trial_complete(self, iteration, trials, trial, **info) -> None:
            if tracker is not None:
                tracker.end(by_index[trial.config[TRIAL_KEY]],
                            problem="the Ray Tune trial ended before the trial finished")

        def on_trial_recover(self, iteration, trials, trial, **info) -> None:
            if tracker is not None:  # Tune retries it: a lease its lost node held must go
                lost = lost_ray_hosts()
                tracker.live_holder(by_index[trial.config[TRIAL_KEY]], lambda h: h.host in lost)

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
            tracker.end(by_index[trial.config[TRIAL_KEY]], problem=problem,
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
