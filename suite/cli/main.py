"""genbench command line: plan | run | submit | status | show | report.

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


def build_parser() -> argparse.ArgumentParser:
    from suite.launchers.options import add_launcher_arguments

    parser = argparse.ArgumentParser(prog="genbench", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    plan = sub.add_parser("plan", help="print the trials a sweep expands to")
    plan.add_argument("sweep", help="sweep YAML file or built-in name (smoke, seed-study)")
    plan.add_argument("--trial-index", type=int, help="only the trial with this index")
    plan.add_argument("--field", help="print only this field of the trial(s), one per line "
                                      "(e.g. workers: slurm/sweep.sbatch sizes its srun with it)")

    run = sub.add_parser("run", help="run a sweep (local launcher by default)")
    _add_sweep_arguments(run)
    run.add_argument("--launcher", default="local",
                     help="local (default), ray (Ray Tune; embedded unless --address) or slurm "
                          "(submit and wait)")
    run.add_argument("--quiet", action="store_true", help="no progress display")
    run.add_argument("--preflight-only", action="store_true",
                     help="check the sweep, its data and eval backbones (preparing them), "
                          "then stop")
    add_launcher_arguments(run, launcher_types())

    show = sub.add_parser("show", help="print a results table")
    show.add_argument("dirs", nargs="+", help="sweep directories (e.g. results/smoke)")

    report = sub.add_parser("report", help="write tables, plots and sample mosaics as a report")
    report.add_argument("dirs", nargs="+", help="sweep directories or results roots")
    report.add_argument("--out", default="report", help="report directory (default: report/)")
    report.add_argument("--format", default="md,html",
                        help="comma-separated: md, html, latex (default: md,html)")

    submit = sub.add_parser("submit", help="submit a sweep to Slurm (one job-array task per "
                                           "trial, via submitit) and return at once")
    _add_sweep_arguments(submit)
    add_launcher_arguments(submit, [t for t in launcher_types() if t[0] == "slurm"])

    status = sub.add_parser("status", help="each trial's state: results store and Slurm")
    status.add_argument("dirs", nargs="+", help="sweep directories (e.g. results/smoke)")
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


def main(argv: Sequence[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TF's start-up chatter out
    args = build_parser().parse_args(argv)
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
    from suite.cli.tables import print_plan
    from suite.sweep.loader import load_sweep

    sweep = load_sweep(args.sweep)
    print_plan(sweep, select_trials(sweep, None if args.trial_index is None
                                    else [args.trial_index]), args.field)
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from suite.cli.preflight import prepare_sweep
    from suite.ranks.slurm_env import srun_step_size
    from suite.store import schema
    from suite.sweep.loader import load_sweep

    if srun_step_size() > 1:
        raise SpecError("command line", "run", f"`genbench run` was started as one of "
                        f"{srun_step_size()} srun tasks; it is one process per sweep and starts "
                        "a trial's ranks itself", "run it once in the batch script (see "
                        "slurm/sweep.sbatch), not under srun")
    sweep = load_sweep(args.sweep)
    trials = select_trials(sweep, args.trial_index)
    launcher = make_launcher(args.launcher, args)
    ctx = run_context(args, absolute=args.launcher != "local")
    launcher.check(trials)
    from suite.machine.threads import configure_threads_from_env

    configure_threads_from_env()  # before the first TensorFlow op (preflight's backbones)
    prepare_sweep(sweep, trials, ctx)
    if args.preflight_only:
        return 0
    from suite.cli.progress import RichProgress
    from suite.store.results import sweep_dir

    with RichProgress(sweep.name, len(trials), quiet=args.quiet) as progress:
        results = launcher.launch(trials, ctx, on_event=progress.handle)
    from suite.cli.tables import print_results

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
    from suite.sweep.loader import load_sweep

    sweep = load_sweep(args.sweep)
    trials = select_trials(sweep, args.trial_index)
    launcher = make_launcher("slurm", args)
    ctx = run_context(args, absolute=True)
    launcher.check(trials)
    prepare_sweep(sweep, trials, ctx)
    submitted = launcher.submit(trials, ctx)
    for s in submitted:
        print(f"{s.job_id}\ttrial {s.trial_index} {s.trial_id} workers={s.workers}")
    skipped = len(trials) - len(submitted)
    print(f"genbench: submitted {len(submitted)} trial(s)"
          + (f", skipped {skipped} finished" if skipped else "")
          + f"; logs in {submitted[0].log_folder if submitted else '-'}; "
          f"follow with: genbench status {sweep_dir(ctx.out, sweep.name)}", file=sys.stderr)
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from suite.cli.tables import print_results

    for d in _existing_dirs(args.dirs, "give a sweep directory, e.g. results/smoke"):
        print_results(d)
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from suite.cli.tables import print_status

    for d in _existing_dirs(args.dirs, "give a sweep directory, e.g. results/smoke"):
        print_status(d)
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from analysis.report import normalize_formats, write_report  # pandas only, no TensorFlow

    dirs = _existing_dirs(args.dirs, "give a sweep directory or results root, e.g. "
                                     "results/smoke")
    try:
        formats = normalize_formats(args.format.split(","))
    except ValueError as exc:
        raise SpecError("command line", "--format", str(exc)) from None
    for path in write_report(dirs, Path(args.out), formats):
        print(path)
    return 0


def _existing_dirs(dirs: Sequence[str], fix: str) -> list[Path]:
    for d in dirs:
        if not Path(d).is_dir():
            raise SpecError(str(d)[:200], "dirs", "no such directory", fix)
    return [Path(d) for d in dirs]


COMMANDS = {"plan": cmd_plan, "run": cmd_run, "show": cmd_show, "report": cmd_report,
            "submit": cmd_submit, "status": cmd_status}

if __name__ == "__main__":
    sys.exit(main())
