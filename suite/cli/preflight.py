"""Preflight: everything a sweep needs, checked (and prepared) before any training starts.

Order matters: the cheap checks that lose nothing come first (the results
directory is writable, Horovod is there for multi-worker trials), then the data
(every dataset loads and fills each trial's global batch: the spec's rule), then
the evaluation backbones (the domain classifier is trained or loaded once, now,
so that no milestone pays for it and no rank waits for it in a collective).
"""

from __future__ import annotations

import importlib.util
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

from suite.common.errors import GenbenchError, SpecError
from suite.store.results import sweep_dir
from suite.sweep.spec import SweepSpec, Trial, check_batch_fill
from suite.trial.context import RunContext


def check_out_dir(out: Path, sweep: str) -> None:
    """The sweep's results directory exists (or can be made) and takes a file."""
    target = sweep_dir(out, sweep)
    fix = "pass --out DIR naming a writable directory (it is created if missing)"
    for parent in (Path(out), *Path(out).parents):
        if parent.exists():
            if not parent.is_dir():
                raise GenbenchError(f"--out {out}: {parent} is a file, not a directory\n"
                                    f"  fix: {fix}")
            break
    try:
        target.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=target, prefix=".genbench-probe-"):
            pass
    except OSError as exc:
        raise GenbenchError(f"--out {out}: cannot write results into {target} "
                            f"({exc.strerror or exc})\n  fix: {fix}") from None


def check_horovod(sweep: SweepSpec, trials: Sequence[Trial]) -> None:
    if any(t.workers > 1 for t in trials) and importlib.util.find_spec("horovod") is None:
        raise SpecError(sweep.source, "workers",
                        "trials with workers > 1 train with Horovod, which is not installed",
                        "run `make install` (or tools/install-horovod.sh "
                        ".venv/bin/python)")


def prepare_sweep(sweep: SweepSpec, trials: Sequence[Trial], ctx: RunContext,
                  announce: Callable[[str], None] = lambda text: None) -> None:
    """Raise one GenbenchError naming the problem, or leave everything ready to train."""
    from suite.data.catalog import load_dataset
    from suite.metrics.backbones.registry import prepare_eval

    check_out_dir(ctx.out, sweep.name)
    check_horovod(sweep, trials)
    datasets = {t.dataset: load_dataset(t.dataset, ctx.data_dir) for t in trials}
    for t in trials:
        n = len(datasets[t.dataset].x_train)
        check_batch_fill(t, min(n, t.max_train_images or n), sweep.source)
    prepare_eval(trials, datasets, ctx.inception_weights, sweep.source, announce)
    write_hparams_experiment(sweep, ctx)


def write_hparams_experiment(sweep: SweepSpec, ctx: RunContext) -> None:
    """TensorBoard's HParams experiment of the whole sweep (whatever trials run now), once,
    before any trial, so every launcher's trials join the same one."""
    from suite.artifacts.hparams import write_sweep_experiment
    from suite.models import model_family
    from suite.trial.columns import config_columns

    write_sweep_experiment(sweep_dir(ctx.out, sweep.name),
                           [config_columns(t) for t in sweep.trials],
                           {model_family(t.model) for t in sweep.trials},
                           {b for t in sweep.trials for b in t.eval.backbones})


def absolute_path(path: str | None) -> str | None:
    """Ranks and jobs may start in another directory: pass file options absolute."""
    if path in (None, "", "random"):
        return path
    return str(Path(path).expanduser().resolve())
