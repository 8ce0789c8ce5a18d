"""genbench command line: plan | run | submit | status | show | report.

User errors (bad sweep files, missing data, unknown names) print one message
naming the file, the field and a fix, exit with code 2, and start nothing.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from suite import schema
from suite.errors import GenbenchError, SpecError

DEFAULT_OUT = "results"
EXIT_USER_ERROR = 2
TABLE_COLUMNS = (
    schema.TRIAL_ID, schema.DATASET, schema.MODEL, schema.UPSAMPLING, schema.LATENT_DIM,
    schema.SEED, schema.WORKERS, schema.EPOCH, schema.STATUS, schema.IMAGES_PER_SEC,
    schema.STEP_TIME_P50_MS, schema.LOSS_G, schema.LOSS_D, schema.ELBO, schema.FD_DOMAIN,
    schema.ERROR,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="genbench", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    plan = sub.add_parser("plan", help="print the trials a sweep expands to")
    plan.add_argument("sweep", help="sweep YAML file or built-in name (smoke, seed-study)")
    plan.add_argument("--trial-index", type=int, help="only the trial with this index")
    plan.add_argument("--field", help="print only this field of the trial(s), one per line "
                                      "(e.g. workers: slurm/sweep.sbatch sizes its srun with it)")

    run = sub.add_parser("run", help="run a sweep (local launcher by default)")
    run.add_argument("sweep", help="sweep YAML file or built-in name")
    run.add_argument("--out", default=DEFAULT_OUT, help="results root (default: results/)")
    run.add_argument("--data-dir", help="directory with the datasets' original files")
    run.add_argument("--inception-weights", metavar="PATH|random",
                     help="InceptionV3 weights for the inception backbone (default: the Keras "
                          "cache, ~/.keras/models); `random`: random weights, for tests only")
    run.add_argument("--launcher", default="local",
                     help="local (default) or ray (Ray Tune; embedded unless --address)")
    run.add_argument("--trial-index", type=int, action="append",
                     help="run only the trial(s) with this index (see `genbench plan`)")
    run.add_argument("--quiet", action="store_true", help="no progress display")
    run.add_argument("--preflight-only", action="store_true",
                     help="check the sweep, its data and eval backbones (preparing them), then "
                          "stop: slurm/sweep.sbatch runs this before srun starts the ranks")
    run.add_argument("--timeline", action="store_true",
                     help="write a Horovod timeline for multi-worker trials (local launcher)")
    ray = run.add_argument_group("Ray launcher (--launcher ray)")
    ray.add_argument("--address", help="join this Ray cluster (e.g. auto); default: embedded Ray")
    ray.add_argument("--max-concurrent", type=int, metavar="K", help="at most K trials at once")
    ray.add_argument("--cpus-per-worker", type=float, metavar="C", help="CPUs per worker (1)")
    ray.add_argument("--gpus-per-worker", type=float, metavar="G", help="GPUs per worker (0)")
    ray.add_argument("--max-failures", type=int, metavar="F",
                     help="retries of a failing trial before it is recorded failed (1)")
    ray.add_argument("--dashboard", action="store_true",
                     help="start the Ray dashboard on 127.0.0.1 (embedded Ray)")

    show = sub.add_parser("show", help="print a results table")
    show.add_argument("dirs", nargs="+", help="sweep directories (e.g. results/smoke)")

    report = sub.add_parser("report", help="write tables, plots and sample mosaics as a report")
    report.add_argument("dirs", nargs="+", help="sweep directories or results roots")
    report.add_argument("--out", default="report", help="report directory (default: report/)")
    report.add_argument("--format", default="md,html",
                        help="comma-separated: md, html, latex (default: md,html)")
    submit = sub.add_parser("submit", help="submit a sweep to Slurm (one job-array task per "
                                           "trial, via submitit) and return at once")
    submit.add_argument("sweep", help="sweep YAML file or built-in name")
    submit.add_argument("--partition", required=True, help="Slurm partition")
    submit.add_argument("--time", type=int, default=60, metavar="MIN",
                        help="time limit per trial job, minutes (default 60); a trial that hits "
                             "it is requeued and resumes from its last epoch")
    submit.add_argument("--gpus-per-worker", type=int, default=0, metavar="G")
    submit.add_argument("--cpus-per-worker", type=int, default=1, metavar="C")
    submit.add_argument("--workers-per-node", type=int, metavar="W",
                        help="Horovod ranks per node (default: all of a trial's on one node)")
    submit.add_argument("--array-parallelism", type=int, default=64, metavar="K",
                        help="array tasks running at once (default 64)")
    submit.add_argument("--account", help="Slurm account")
    submit.add_argument("--qos", help="Slurm quality of service")
    submit.add_argument("--mem-gb", type=float, metavar="M", help="memory per node, GB")
    submit.add_argument("--setup", action="append", metavar="CMD",
                        help="shell line run in the job before the trial (repeatable), "
                             "e.g. 'module load cuda'")
    submit.add_argument("--trial-index", type=int, action="append",
                        help="submit only the trial(s) with this index")
    submit.add_argument("--out", default=DEFAULT_OUT, help="results root (default: results/)")
    submit.add_argument("--data-dir", help="directory with the datasets' original files")
    submit.add_argument("--inception-weights", metavar="PATH",
                        help="InceptionV3 weights on a filesystem the jobs see (see `run`)")

    status = sub.add_parser("status", help="each trial's state: results store and Slurm")
    status.add_argument("dirs", nargs="+", help="sweep directories (e.g. results/smoke)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TF's start-up chatter out
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except GenbenchError as exc:
        print(f"genbench: error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("genbench: interrupted; re-run the same command to resume", file=sys.stderr)
        return 130


def cmd_plan(args: argparse.Namespace) -> int:
    import dataclasses

    from rich.console import Console
    from rich.table import Table

    from suite.spec import Trial, load_sweep

    sweep = load_sweep(args.sweep)
    trials = select_trials(sweep, None if args.trial_index is None else [args.trial_index])
    if args.field:
        fields = ["trial_id", *(f.name for f in dataclasses.fields(Trial))]
        if args.field not in fields:
            raise SpecError("command line", "--field", f"unknown field {args.field!r}",
                            f"fields: {', '.join(fields)}")
        for t in trials:
            print(getattr(t, args.field))
        return 0
    table = Table(title=f"{sweep.name}: {len(sweep.trials)} trials  ({sweep.source})")
    for col in ("#", "trial_id", "dataset", "model", "upsampling", "latent", "epochs (milestones)",
                "seed", "batch", "lr", "workers", "max_train"):
        table.add_column(col)
    for t in trials:
        table.add_row(str(t.index), t.trial_id, t.dataset, t.model, t.upsampling,
                      str(t.latent_dim), ",".join(map(str, t.milestones)), str(t.seed),
                      str(t.batch_size), f"{t.lr:g}", str(t.workers),
                      str(t.max_train_images or "all"))
    Console(width=200).print(table)
    return 0


def preflight(sweep, data_dir: str | None, inception_weights: str | None = None) -> None:
    """Load every dataset and check batch sizes before any training starts."""
    import importlib.util

    from suite.data import load_dataset

    if any(t.workers > 1 for t in sweep.trials) and importlib.util.find_spec("horovod") is None:
        raise SpecError(sweep.source, "workers",
                        "trials with workers > 1 train with Horovod, which is not installed",
                        "run `make install` (or tools/install-horovod.sh .venv/bin/python)")

    for name in sweep.datasets:
        data = load_dataset(name, data_dir)
        for t in sweep.trials:
            if t.dataset != name:
                continue
            n = min(len(data.x_train), t.max_train_images or len(data.x_train))
            if n < t.global_batch_size:
                raise SpecError(sweep.source, "batch_size",
                                f"trial {t.index} ({t.trial_id}): {n} training images of {name} "
                                f"cannot fill one global batch of {t.global_batch_size}",
                                "lower batch_size or use more data")

    from suite.metrics.features import check_eval_setup, prepare_backbones

    datasets = {name: load_dataset(name, data_dir) for name in sweep.datasets}  # lru-cached
    check_eval_setup(sweep.trials, datasets, inception_weights, source=sweep.source)
    prepare_backbones(sweep.trials, datasets)  # e.g. train the domain classifier once, now


def absolute_weights_path(weights: str | None) -> str | None:
    """Ranks and jobs may start in another directory: pass weights files absolute."""
    if weights in (None, "random"):
        return weights
    return str(Path(weights).expanduser().resolve())


def select_trials(sweep, indices: list[int] | None):
    if not indices:
        return list(sweep.trials)
    known = {t.index for t in sweep.trials}
    for i in indices:
        if i not in known:
            raise SpecError(sweep.source, "--trial-index", f"no trial {i}",
                            f"valid indices: 0..{len(sweep.trials) - 1}")
    return [t for t in sweep.trials if t.index in set(indices)]


# Flags that become launcher options (same names). Only flags given are passed on, so
# a launcher rejects a flag meant for another one, listing its own valid options.
LAUNCHER_OPTIONS = ("timeline", "address", "max_concurrent", "cpus_per_worker",
                    "gpus_per_worker", "max_failures", "dashboard")


def launcher_options(args: argparse.Namespace) -> dict:
    values = {name: getattr(args, name, None) for name in LAUNCHER_OPTIONS}
    return {k: v for k, v in values.items() if v is not None and v is not False}


def cmd_run(args: argparse.Namespace) -> int:
    from suite.launchers import LAUNCHERS
    from suite.registry import UnknownNameError
    from suite.results import sweep_dir
    from suite.spec import load_sweep

    sweep = load_sweep(args.sweep)
    from suite.training.distributed import srun_step_size  # no Horovod import

    if srun_step_size() > 1:  # `srun -n N genbench run ...`: this process is one rank
        return run_rank_in_srun_step(select_trials(sweep, args.trial_index), args)
    from suite.environment import configure_threads_from_env

    configure_threads_from_env()  # before the first TensorFlow op
    options = launcher_options(args)
    try:
        launcher = LAUNCHERS.get(args.launcher)(**options)
    except UnknownNameError as exc:
        raise SpecError("command line", "--launcher", str(exc)) from None
    trials = select_trials(sweep, args.trial_index)
    inception_weights = absolute_weights_path(args.inception_weights)
    preflight(sweep, args.data_dir, inception_weights)

    if args.preflight_only:
        return 0
    from suite.progress import RichProgress
    from suite.worker import RunContext

    out = Path(args.out)
    sweep_dir(out, sweep.name).mkdir(parents=True, exist_ok=True)
    ctx = RunContext(out=out, data_dir=args.data_dir, inception_weights=inception_weights)
    with RichProgress(sweep.name, len(trials), quiet=args.quiet) as progress:
        results = launcher.launch(trials, ctx, on_event=progress.handle)
    print_results(sweep_dir(out, sweep.name), trial_ids={t.trial_id for t in trials})
    failed = [r for r in results if r.status == schema.STATUS_FAILED]
    if failed:
        print(f"genbench: {len(failed)} of {len(results)} trials failed; see error.txt in "
              "their trial directories; re-run to retry them", file=sys.stderr)
        return 1
    return 0


def print_results(directory: Path, trial_ids: set[str] | None = None) -> None:
    from rich.console import Console
    from rich.table import Table

    from suite.results import read_results_frame

    df = read_results_frame(directory)
    if trial_ids is not None:
        df = df[df[schema.TRIAL_ID].isin(trial_ids)]
    df = df.sort_values([schema.TRIAL_INDEX, schema.EPOCH])
    columns = [c for c in TABLE_COLUMNS if c in df and df[c].notna().any()]
    table = Table(title=f"{directory}: {len(df)} rows")
    for c in columns:
        table.add_column(c, overflow="fold")
    for _, row in df[columns].iterrows():
        table.add_row(*(_format(row[c]) for c in columns))
    Console(width=220).print(table)


def _format(value) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def cmd_show(args: argparse.Namespace) -> int:
    for d in args.dirs:
        if not Path(d).is_dir():
            raise SpecError(d, "dirs", "no such directory",
                            "give a sweep directory, e.g. results/smoke")
        print_results(Path(d))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from analysis.report import normalize_formats, write_report  # pandas only, no TensorFlow

    for d in args.dirs:
        if not Path(d).is_dir():
            raise SpecError(d, "dirs", "no such directory",
                            "give a sweep directory or results root, e.g. results/smoke")
    try:
        formats = normalize_formats(args.format.split(","))
    except ValueError as exc:
        raise SpecError("command line", "--format", str(exc)) from None
    for path in write_report([Path(d) for d in args.dirs], Path(args.out), formats):
        print(path)
    return 0


def run_rank_in_srun_step(trials, args: argparse.Namespace) -> int:
    """One of the N tasks of an srun step runs one rank of a workers: N trial in place.

    There is no horovodrun: the tasks rendezvous through the trial directory
    (suite.training.distributed) and rank 0 writes the store. As for ranks started
    by any launcher, a data problem becomes the trial's `failed` row.
    """
    from suite.rank_main import run_rank
    from suite.training.distributed import srun_step_size
    from suite.worker import RunContext

    n = srun_step_size()
    if len(trials) != 1 or trials[0].workers != n:
        got = ", ".join(f"trial {t.index} has workers: {t.workers}" for t in trials[:3])
        raise SpecError("command line", "--trial-index",
                        f"srun started {n} tasks, which run the ranks of one trial with "
                        f"workers: {n} ({got})",
                        f"give one --trial-index of a workers: {n} trial, or srun "
                        "--ntasks=<its workers> (slurm/sweep.sbatch does)")
    result = run_rank(trials[0], RunContext(out=Path(args.out), data_dir=args.data_dir,
                                            inception_weights=args.inception_weights))
    return 1 if result.status == schema.STATUS_FAILED else 0


def cmd_submit(args: argparse.Namespace) -> int:
    from suite.launchers.slurm import SlurmLauncher, check_slurm_commands, import_submitit
    from suite.results import sweep_dir
    from suite.spec import load_sweep
    from suite.worker import RunContext

    sweep = load_sweep(args.sweep)
    import_submitit()  # clear errors first: submitit and Slurm's commands are there
    check_slurm_commands()
    launcher = SlurmLauncher(
        partition=args.partition, time_min=args.time, gpus_per_worker=args.gpus_per_worker,
        cpus_per_worker=args.cpus_per_worker, workers_per_node=args.workers_per_node,
        array_parallelism=args.array_parallelism, account=args.account, qos=args.qos,
        mem_gb=args.mem_gb, setup=tuple(args.setup or ()))
    trials = select_trials(sweep, args.trial_index)
    inception_weights = absolute_weights_path(args.inception_weights)
    preflight(sweep, args.data_dir, inception_weights)
    out = Path(args.out).resolve()  # the jobs may start in another directory
    data_dir = str(Path(args.data_dir).resolve()) if args.data_dir else None
    sweep_dir(out, sweep.name).mkdir(parents=True, exist_ok=True)
    submitted = launcher.submit(trials, RunContext(out=out, data_dir=data_dir,
                                                   inception_weights=inception_weights))
    for s in submitted:
        print(f"{s.job_id}\ttrial {s.trial_index} {s.trial_id} workers={s.workers}")
    skipped = len(trials) - len(submitted)
    print(f"genbench: submitted {len(submitted)} trial(s)"
          + (f", skipped {skipped} finished" if skipped else "")
          + f"; logs in {submitted[0].log_folder if submitted else '-'}; "
          f"follow with: genbench status {sweep_dir(out, sweep.name)}", file=sys.stderr)
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    import json

    from rich.console import Console
    from rich.table import Table

    from suite.launchers.slurm import queue_states, read_jobs  # no submitit needed
    from suite.results import CONFIG_FILE, RESULT_FILE, TRIALS_DIR, read_rows, trial_state

    for d in map(Path, args.dirs):
        if not d.is_dir():
            raise SpecError(str(d), "dirs", "no such directory",
                            "give a sweep directory, e.g. results/smoke")
        trials: dict[str, dict] = {}  # trial id -> index, workers, milestones, job id
        for config in sorted((d / TRIALS_DIR).glob(f"*/{CONFIG_FILE}")):
            c = json.loads(config.read_text())
            trials[c["trial_id"]] = {"index": c["index"], "workers": c["workers"],
                                     "milestones": c["milestones"], "job": ""}
        for job in read_jobs(d):  # later submissions of a trial win
            trials[job.trial_id] = {"index": job.trial_index, "workers": job.workers,
                                    "milestones": list(job.milestones), "job": job.job_id}
        states = queue_states(t["job"] for t in trials.values() if t["job"])
        table = Table(title=f"{d}: {len(trials)} trials")
        for col in ("#", "trial_id", "workers", "state", "last epoch", "milestones", "job",
                    "slurm"):
            table.add_column(col)
        for trial_id, t in sorted(trials.items(), key=lambda kv: kv[1]["index"]):
            directory = d / TRIALS_DIR / trial_id
            done = [r[schema.EPOCH] for r in read_rows(directory / RESULT_FILE)
                    if r[schema.STATUS] == schema.STATUS_OK]
            slurm_state = states.get(t["job"], "not queued" if t["job"] else "")
            table.add_row(str(t["index"]), trial_id, str(t["workers"]),
                          trial_state(directory, t["milestones"]), str(max(done, default="-")),
                          ",".join(map(str, t["milestones"])), t["job"], slurm_state)
        Console(width=200).print(table)
    return 0


COMMANDS = {"plan": cmd_plan, "run": cmd_run, "show": cmd_show, "report": cmd_report,
            "submit": cmd_submit, "status": cmd_status}

if __name__ == "__main__":
    sys.exit(main())
