"""genbench command line: plan | run | show | report.

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

    run = sub.add_parser("run", help="run a sweep (local launcher by default)")
    run.add_argument("sweep", help="sweep YAML file or built-in name")
    run.add_argument("--out", default=DEFAULT_OUT, help="results root (default: results/)")
    run.add_argument("--data-dir", help="directory with the datasets' original files")
    run.add_argument("--launcher", default="local",
                     help="local (default) or ray (Ray Tune; embedded unless --address)")
    run.add_argument("--trial-index", type=int, action="append",
                     help="run only the trial(s) with this index (see `genbench plan`)")
    run.add_argument("--quiet", action="store_true", help="no progress display")
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
    from rich.console import Console
    from rich.table import Table

    from suite.spec import load_sweep

    sweep = load_sweep(args.sweep)
    table = Table(title=f"{sweep.name}: {len(sweep.trials)} trials  ({sweep.source})")
    for col in ("#", "trial_id", "dataset", "model", "upsampling", "latent", "epochs (milestones)",
                "seed", "batch", "lr", "workers", "max_train"):
        table.add_column(col)
    for t in sweep.trials:
        table.add_row(str(t.index), t.trial_id, t.dataset, t.model, t.upsampling,
                      str(t.latent_dim), ",".join(map(str, t.milestones)), str(t.seed),
                      str(t.batch_size), f"{t.lr:g}", str(t.workers), str(t.max_train_images or "all"))
    Console(width=200).print(table)
    return 0


def preflight(sweep, data_dir: str | None) -> None:
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
    from suite.environment import configure_threads_from_env

    configure_threads_from_env()  # before the first TensorFlow op
    options = launcher_options(args)
    try:
        launcher = LAUNCHERS.get(args.launcher)(**options)
    except UnknownNameError as exc:
        raise SpecError("command line", "--launcher", str(exc)) from None
    trials = select_trials(sweep, args.trial_index)
    preflight(sweep, args.data_dir)

    from suite.progress import RichProgress
    from suite.worker import RunContext

    out = Path(args.out)
    sweep_dir(out, sweep.name).mkdir(parents=True, exist_ok=True)
    ctx = RunContext(out=out, data_dir=args.data_dir)
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
            raise SpecError(d, "dirs", "no such directory", "give a sweep directory, e.g. results/smoke")
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


COMMANDS = {"plan": cmd_plan, "run": cmd_run, "show": cmd_show, "report": cmd_report}

if __name__ == "__main__":
    sys.exit(main())
