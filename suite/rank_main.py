"""The program every Horovod rank runs: `python -m suite.rank_main LAUNCH_JSON`.

A launcher (local: horovodrun; Slurm: srun; Ray: actors) writes the trial and
its run context to LAUNCH_JSON, starts N copies of this module, and reads the
outcome back from the results store. Replicas are started before TensorFlow
initialises, as Horovod's device and thread pinning requires.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from pathlib import Path

from suite.environment import configure_threads_from_env
from suite.spec import Trial
from suite.worker import RunContext, TrialResult

LAUNCH_FILE = "launch.json"


def write_launch_file(path: Path, trial: Trial, ctx: RunContext) -> None:
    context = {k: str(v) if isinstance(v, Path) else v for k, v in dataclasses.asdict(ctx).items()}
    path.write_text(json.dumps({"trial": json.loads(trial.to_json()), "context": context},
                               indent=2, sort_keys=True))


def read_launch_file(path: Path) -> tuple[Trial, RunContext]:
    data = json.loads(Path(path).read_text())
    trial = Trial.from_json(json.dumps(data["trial"]))
    context = dict(data["context"])
    context["out"] = Path(context["out"])
    return trial, RunContext(**context)


def run_rank(trial: Trial, ctx: RunContext) -> TrialResult:
    """Run this process's rank of `trial`: replicas from the environment (horovodrun's
    variables, or an srun step's), then the trial; prints the rank's outcome line."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from suite.results import trial_dir
    from suite.training.distributed import start_replicas

    # Before any TensorFlow op. Under srun the ranks rendezvous through a file
    # in the trial directory, which every node of the job sees.
    replicas = start_replicas(rendezvous_dir=trial_dir(ctx.out, trial.sweep, trial.trial_id))
    configure_threads_from_env()
    from suite.worker import run_trial

    result = run_trial(trial, ctx, replicas=replicas)
    print(f"rank {replicas.info.rank}/{replicas.info.size}: trial {trial.trial_id} {result.status}"
          f" weights={result.weights_digest or '-'}"
          + (f": {result.error}" if result.error else ""), flush=True)
    return result


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m suite.rank_main LAUNCH_JSON", file=sys.stderr)
        return 2
    trial, ctx = read_launch_file(Path(argv[0]))
    result = run_rank(trial, ctx)
    # A failed rank exits non-zero so that horovodrun / srun stop the others.
    return 1 if result.status == "failed" else 0


if __name__ == "__main__":
    sys.exit(main())
