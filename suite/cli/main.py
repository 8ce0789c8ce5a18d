"""genbench command line: plan | run | submit | status | show | report | collect.

Thin on purpose: parse -> spec (all validation) -> preflight -> launcher.launch -> print.
User errors (bad sweep files, missing data, unknown names, an unwritable --out,
a full disk) print one message naming the file, the field and a fix, exit
with code 2, and lose nothing already written. SIGTERM stops a run like Ctrl-C.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from suite.common.errors import GenbenchError, SpecError

DEFAULT_OUT = "results"
EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread so every cleanup (rank groups, leases) runs."""


def launcher_types() -> list[tuple[str, type]]:
    """(name, options dataclass) of every registered launcher; imports neither Ray nor
    submitit (the options live beside them, but the modules import those lazily)."""
    from suite.launchers import LAUNCHERS

    return [(name, LAUNCHERS.get(name).options_type) for name in LAUNCHERS.names()]


def build_parser(launcher_options: bool = True) -> argparse.ArgumentParser:
    """The parser; `launcher_options=False` leaves out run/submit's launcher options, whose
    dataclasses live in modules that import the trainer (TensorFlow, seconds), so the
    reading commands (plan, show, status, collect) answer without it."""
    from suite.launchers.options import add_launcher_arguments

    parser = argparse.ArgumentParser(prog="genbench", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    plan = sub.add_parser("plan", help="print the trials a sweep expands to")
    plan.add_argument("sweep", help="sweep YAML file or built-in name (smoke, seed-study)")
    plan.add_argument("--trial-index", type=int, help="only the trial with this index")
    plan.add_argument("--field", help="print only this field of the trial(s), one per line "
                                      "(e.g. workers: slurm/sweep.sbatch sizes its srun with it)")
    plan.add_argument("--format", default="table", choices=("table", "json", "csv"),
                      help="table (default: axes, trial count, cost estimate, first and last "
                           "trials), or every trial as json or csv for scripts")
    plan.add_argument("--all", action="store_true", help="the table lists every trial")
    plan.add_argument("--out", default=DEFAULT_OUT, help="results root whose rows of earlier "
                      "runs on this machine calibrate the cost estimate (default: results/)")
    plan.add_argument("--measure", action="store_true", help="time a few real training "
                      "steps of each configuration no earlier row knows (seconds each)")
    plan.add_argument("--data-dir", help="datasets for --measure")

    run = sub.add_parser("run", help="run a sweep (local launcher by default)")
    _add_sweep_arguments(run)
    run.add_argument("--launcher", default="local",
                     help="local (default), ray (Ray Tune; embedded unless --address) or slurm "
                          "(submit and wait)")
    run.add_argument("--quiet", action="store_true", help="no progress display")
    run.add_argument("--preflight-only", action="store_true",
                     help="check the sweep, its data and eval backbones (preparing them), "
                          "then stop")
    add_launcher_arguments(run, launcher_types() if launcher_options else [])

    show = sub.add_parser("show", help="print a results table")
    show.add_argument("dirs", nargs="+", help="sweep directories (e.g. results/smoke)")
    show.add_argument("--all", action="store_true",
                      help="every row (default: all up to 40, else the first and last 20)")

    report = sub.add_parser("report", help="write tables, plots and sample mosaics as a report")
    report.add_argument("dirs", nargs="+", help="sweep directories or results roots")
    report.add_argument("--out", default="report", help="report directory (default: report/)")
    report.add_argument("--format", default="md,html",
                        help="comma-separated: md, html, latex (default: md,html)")
    report.add_argument("--aggregate-above", type=int, default=64, metavar="N",
                        help="above N trials, aggregate across seeds and show samples of the "
                             "best and worst configurations only (default: 64)")

    submit = sub.add_parser("submit", help="submit a sweep to Slurm (one job-array task per "
                                           "trial, via submitit) and return at once")
    _add_sweep_arguments(submit)
    add_launcher_arguments(submit, [t for t in launcher_types() if t[0] == "slurm"]
                           if launcher_options else [])

    status = sub.add_parser("status", help="each trial's state: results store and Slurm")
    status.add_argument("dirs", nargs="+", help="sweep directories (e.g. results/smoke)")
    status.add_argument("--all", action="store_true",
                        help="every trial (default: all up to 40, else the first and last 20 "
                             "of those not ok)")

    collect = sub.add_parser("collect", help="write a sweep's rows as one parquet dataset "
                                             "(hive-partitioned by model) for pandas, polars, "
                                             "DuckDB")
    collect.add_argument("dirs", nargs="+", help="sweep directories (e.g. results/smoke)")
    collect.add_argument("--out", help="dataset directory (default: <first dir>/collected); "
                                       "replaced atomically")
    return parser


def _add_sweep_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("sweep", help="sweep YAML file or built-in name")
    parser.add_argument("--out", default=DEFAULT_OUT, help="results root (default: results/)")
    parser.add_argument("--data-dir", help="directory with the datasets' original files")
    parser.add_argument("--inception-weights", metavar="PATH|random",
                        help="weights of the Inception backbones, on a filesystem every worker "
                             "sees: for `inception`, TTUR's classify_image_graph_def.pb or the "
                             "inception-2015-12-05.tgz holding it; for `inception_keras`, a "
                             "Keras .h5; `random`: random inception_keras weights, for tests only")
    parser.add_argument("--trial-index", type=int, action="append",
                        help="only the trial(s) with this index (see `genbench plan`)")
    parser.add_argument("--checkpoints", metavar="POLICY",
                        help="keep | last-milestone-only | delete-when-finished: what each "
                             "trial keeps on disk (overrides the sweep file's `checkpoints`; "
                             "trial ids do not change)")


def main(argv: Sequence[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TF's start-up chatter out
    argv = list(sys.argv[1:] if argv is None else argv)
    command = next((a for a in argv if not a.startswith("-")), None)
    args = build_parser(launcher_options=command in (None, "run", "submit")).parse_args(argv)
    previous = _raise_on_sigterm()
    try:
        return COMMANDS[args.command](args)
    except GenbenchError as exc:
        print(f"genbench: error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except Terminated:
        print("genbench: terminated (SIGTERM); every process of the running trial was "
              "stopped; re-run the same command to resume", file=sys.stderr)
        return EXIT_TERMINATED
    except KeyboardInterrupt:
        print("genbench: interrupted; re-run the same command to resume", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _raise_on_sigterm():
    """SIGTERM -> Terminated in the main thread (only there can a handler be set)."""
    def handler(signum, frame):
        raise Terminated()

    try:
        return signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread (e.g. called from a test's worker thread)
        return None


def select_trials(sweep, indices: list[int] | None):
    if not indices:
        return list(sweep.trials)
    known = {t.index for t in sweep.trials}
    for i in indices:
        if i not in known:
            raise SpecError(sweep.source, "--trial-index", f"no trial {i}",
                            f"valid indices: 0..{len(sweep.trials) - 1}")
    return [t for t in sweep.trials if t.index in set(indices)]


def make_launcher(name: str, args: argparse.Namespace):
    from suite.common.registry import UnknownNameError
    from suite.launchers import LAUNCHERS
    from suite.launchers.options import launcher_kwargs

    try:
        launcher_type = LAUNCHERS.get(name)
    except UnknownNameError as exc:
        raise SpecError("command line", "--launcher", str(exc)) from None
    kwargs = launcher_kwargs(args, launcher_type.options_type, [t for _, t in launcher_types()])
    return launcher_type(**kwargs)


def run_context(args: argparse.Namespace, absolute: bool = False):
    from suite.cli.preflight import absolute_path
    from suite.trial.context import RunContext

    out = Path(args.out).expanduser()
    data_dir = args.data_dir
    if absolute:  # jobs and ranks may start in another directory, on another node
        out, data_dir = out.resolve(), absolute_path(data_dir)
    return RunContext(out=out, data_dir=data_dir,
                      inception_weights=absolute_path(args.inception_weights))


def cmd_plan(args: argparse.Namespace) -> int:
    from suite.cli.plan import plan_cost, print_plan
    from suite.sweep.loader import load_sweep

    sweep = load_sweep(args.sweep)
    trials = select_trials(sweep, None if args.trial_index is None else [args.trial_index])
    cost = (None if args.field or args.format == "csv" else
            plan_cost(trials, Path(args.out).expanduser(), args.measure, args.data_dir))
    print_plan(sweep, trials, args.field, fmt=args.format, show_all=args.all, cost=cost)
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from suite.cli.preflight import prepare_sweep
    from suite.ranks.slurm_env import srun_step_size
    from suite.store import schema
    from suite.sweep.loader import load_sweep, with_checkpoints

    if srun_step_size() > 1:
        raise SpecError("command line", "run", f"`genbench run` was started as one of "
                        f"{srun_step_size()} srun tasks; it is one process per sweep and starts "
                        "a trial's ranks itself", "run it once in the batch script (see "
                        "slurm/sweep.sbatch), not under srun")
    sweep = with_checkpoints(load_sweep(args.sweep), args.checkpoints)
    trials = select_trials(sweep, args.trial_index)
    launcher = make_launcher(args.launcher, args)
    ctx = run_context(args, absolute=args.launcher != "local")
    launcher.check(trials)
    from suite.machine.threads import configure_threads_from_env

    configure_threads_from_env()  # before the first TensorFlow op (preflight's backbones)
    from suite.cli.progress import announce

    prepare_sweep(sweep, trials, ctx, announce=announce)
    if args.preflight_only:
        return 0
    from suite.cli.progress import RichProgress
    from suite.store.results import sweep_dir

    with RichProgress(sweep.name, len(trials), quiet=args.quiet) as progress:
        results = launcher.launch(trials, ctx, on_event=progress.handle)
    from analysis.load import refresh_row_cache
    from suite.cli.tables import print_results

    refresh_row_cache(sweep_dir(ctx.out, sweep.name))  # big sweeps: show/status read one file
    print_results(sweep_dir(ctx.out, sweep.name), trial_ids={t.trial_id for t in trials})
    failed = [r for r in results if r.status == schema.STATUS_FAILED]
    if failed:
        print(f"genbench: {len(failed)} of {len(results)} trials failed; see error.txt in "
              "their trial directories; re-run to retry them", file=sys.stderr)
        return 1
    return 0


def cmd_submit(args: argparse.Namespace) -> int:
    from suite.cli.preflight import prepare_sweep
    from suite.store.results import sweep_dir
    from suite.sweep.loader import load_sweep, with_checkpoints

    sweep = with_checkpoints(load_sweep(args.sweep), args.checkpoints)
    trials = select_trials(sweep, args.trial_index)
    launcher = make_launcher("slurm", args)
    ctx = run_context(args, absolute=True)
    launcher.check(trials)
    prepare_sweep(sweep, trials, ctx)
    submission = launcher.submit(trials, ctx)
    for s in submission.jobs:
        print(f"{s.job_id}\ttrial {s.trial_index} {s.trial_id} workers={s.workers}")
    print(f"genbench: {submission.describe()}; follow with: genbench status "
          f"{sweep_dir(ctx.out, sweep.name)}", file=sys.stderr)
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from suite.cli.tables import print_results

    for d in _existing_dirs(args.dirs, "give a sweep directory, e.g. results/smoke"):
        print_results(d, show_all=args.all)
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from suite.cli.tables import print_status

    for d in _existing_dirs(args.dirs, "give a sweep directory, e.g. results/smoke"):
        print_status(d, show_all=args.all)
    return 0


def cmd_collect(args: argparse.Namespace) -> int:
    from suite.cli.collect import collect_sweep, default_out

    dirs = _existing_dirs(args.dirs, "give a sweep directory, e.g. results/smoke")
    done = collect_sweep(dirs, Path(args.out) if args.out else default_out(dirs))
    print(f"genbench: wrote {done.rows:,} rows of {done.trials:,} trials to {done.out} "
          f"({done.files} files, hive-partitioned by model); read it with "
          f"pandas.read_parquet({str(done.out)!r})", file=sys.stderr)
    print(done.out)
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from analysis.report import normalize_formats, write_report  # pandas only, no TensorFlow

    dirs = _existing_dirs(args.dirs, "give a sweep directory or results root, e.g. "
                                     "results/smoke")
    try:
        formats = normalize_formats(args.format.split(","))
    except ValueError as exc:
        raise SpecError("command line", "--format", str(exc)) from None
    if args.aggregate_above < 0:
        raise SpecError("command line", "--aggregate-above", f"must be 0 or more, got "
                        f"{args.aggregate_above}", "e.g. --aggregate-above 64")
    for path in write_report(dirs, Path(args.out), formats, aggregate_above=args.aggregate_above):
        print(path)
    return 0


def _existing_dirs(dirs: Sequence[str], fix: str) -> list[Path]:
    for d in dirs:
        if not Path(d).is_dir():
            raise SpecError(str(d)[:200], "dirs", "no such directory", fix)
    return [Path(d) for d in dirs]


COMMANDS = {"plan": cmd_plan, "run": cmd_run, "show": cmd_show, "report": cmd_report,
            "submit": cmd_submit, "status": cmd_status, "collect": cmd_collect}

if __name__ == "__main__":
    sys.exit(main())
