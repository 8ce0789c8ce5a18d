"""`genbench plan`: a sweep's axes, trial count, cost estimate and trials, at any size.

The table is bounded (the first and last trials) past TABLE_ROWS trials unless
`--all`, so a 10,000-trial plan answers in about a second; `--format json|csv`
writes every trial for scripts (one record per trial, the Trial's own fields).
"""

from __future__ import annotations

import csv
import dataclasses
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from suite.cli.cost import CostEstimate, estimate_cost, format_hours
from suite.common.errors import SpecError

PLAN_COLUMNS = ("#", "trial_id", "dataset", "model", "upsampling", "latent",
                "epochs (milestones)", "seed", "batch", "lr", "workers", "max_train", "depth",
                "width", "beta1")
TABLE_ROWS = 40  # whole table up to this many trials; else the first and last half of it
FORMATS = ("table", "json", "csv")
# Trial fields summarised as axes (sweep and index name the trial, they are not axes).
_NOT_AXES = ("sweep", "index", "epochs", "milestones", "eval")


def plan_cost(trials: Sequence[Any], results: Path | None = None, measure: bool = False,
              data_dir: str | None = None) -> CostEstimate:
    """The cost estimate: step times from the rows under `results` (earlier runs on this
    machine), then a measured run of the rest when `measure`, else the table."""
    from suite.cli.cost_sources import one_time_costs, rows_step_times

    known = rows_step_times(results) if results is not None else {}
    if measure:
        from suite.cli.step_probe import measure_step_times

        known = {**known, **measure_step_times(trials, known, data_dir)}
    return estimate_cost(trials, known, one_time_costs(trials))


def print_plan(sweep: Any, trials: Sequence[Any], field: str | None = None,
               fmt: str = "table", show_all: bool = False, out: TextIO | None = None,
               cost: CostEstimate | None = None) -> None:
    """The plan in the chosen format; `field`: one field of each trial per line."""
    out = out or sys.stdout
    if field:
        print_field(trials, field, out)
    elif fmt == "json":
        json.dump(plan_document(sweep, trials, cost), out, indent=1)
        out.write("\n")
    elif fmt == "csv":
        write_csv(trials, out)
    elif fmt == "table":
        print_table(sweep, trials, show_all, out, cost)
    else:
        raise SpecError("command line", "--format", f"unknown format {fmt[:40]!r}",
                        f"use one of: {', '.join(FORMATS)}")


def print_field(trials: Sequence[Any], field: str, out: TextIO) -> None:
    from suite.sweep.spec import Trial

    fields = ["trial_id", *(f.name for f in dataclasses.fields(Trial))]
    if field not in fields:
        raise SpecError("command line", "--field", f"unknown field {field[:40]!r}",
                        f"fields: {', '.join(fields)}")
    out.write("".join(f"{getattr(t, field)}\n" for t in trials))


def trial_record(trial: Any) -> dict[str, Any]:
    """One trial as flat JSON-able fields (eval_* for the eval block), without asdict's
    deep copy (it dominated a 10,000-trial plan)."""
    record: dict[str, Any] = {"trial_id": trial.trial_id}
    for f in dataclasses.fields(trial):
        value = getattr(trial, f.name)
        if f.name == "eval":
            for g in dataclasses.fields(value):
                item = getattr(value, g.name)
                record[f"eval_{g.name}"] = list(item) if isinstance(item, tuple) else item
        else:
            record[f.name] = list(value) if isinstance(value, tuple) else value
    return record


def axis_values(trials: Sequence[Any]) -> dict[str, list[Any]]:
    """Every axis with its distinct values in first-seen order (milestones as `epochs`)."""
    from suite.sweep.spec import Trial

    names = [f.name for f in dataclasses.fields(Trial) if f.name not in _NOT_AXES]
    seen: dict[str, dict[Any, None]] = {n: {} for n in names}
    seen["epochs"] = {}
    for t in trials:
        for n in names:
            seen[n][getattr(t, n)] = None
        for m in t.milestones:
            seen["epochs"][m] = None
    return {n: [list(v) if isinstance(v, tuple) else v for v in values]
            for n, values in seen.items()}


def plan_document(sweep: Any, trials: Sequence[Any],
                  cost: CostEstimate | None = None) -> dict[str, Any]:
    cost = cost or estimate_cost(trials)
    return {"sweep": sweep.name, "source": sweep.source, "trials_in_sweep": len(sweep.trials),
            "trials": len(trials), "axes": axis_values(trials),
            "estimate": {**dataclasses.asdict(cost), "label": cost.label},
            "records": [trial_record(t) for t in trials]}


def write_csv(trials: Sequence[Any], out: TextIO) -> None:
    """One row per trial; list fields (milestones, eval_backbones) joined by spaces."""
    records = [trial_record(t) for t in trials]
    if not records:
        return
    writer = csv.DictWriter(out, fieldnames=list(records[0]), lineterminator="\n")
    writer.writeheader()
    for r in records:
        writer.writerow({k: " ".join(map(str, v)) if isinstance(v, list) else v
                         for k, v in r.items()})


def summary_lines(sweep: Any, trials: Sequence[Any],
                  cost: CostEstimate | None = None) -> list[str]:
    """Axes that vary (with their values), the fixed ones, and the cost estimate."""
    axes = axis_values(trials)
    varying = {n: v for n, v in axes.items() if len(v) > 1}
    fixed = {n: v[0] for n, v in axes.items() if len(v) == 1}
    lines = [f"{sweep.name}: {len(sweep.trials):,} trials  ({sweep.source})"]
    if len(trials) != len(sweep.trials):
        lines.append(f"selected: {len(trials):,} trials")
    for name, values in varying.items():
        note = " (milestones of one run, not trials)" if name == "epochs" else ""
        lines.append(f"  {name:<16} {len(values):>3} x  {_values_text(values)}{note}")
    lines.append("  fixed: " + ", ".join(f"{n}={_text(v)}" for n, v in fixed.items()))
    return lines + cost_lines(cost or estimate_cost(trials))


def cost_lines(cost: CostEstimate) -> list[str]:
    """The estimate, its range, one-time costs and where its figures came from."""
    unknown = (f"; {cost.unestimated:,} trial(s) not estimated (user dataset without "
               "max_train_images)" if cost.unestimated else "")
    where = ("this machine" if set(cost.sources) <= {"rows", "measured"} and cost.sources
             else "a 2-core CPU machine")
    lines = [f"cost: about {format_hours(cost.machine_hours)} (likely "
             f"{format_hours(cost.low_hours)} to {format_hours(cost.high_hours)}) on {where} "
             f"({cost.images:,} training images; longest trial "
             f"{format_hours(cost.longest_trial_hours)}){unknown}"]
    if cost.one_time:
        lines.append("  once: " + ", ".join(f"{c.what} ~{format_hours(c.seconds / 3600)}"
                                            for c in cost.one_time) + " (included)")
    lines.append(f"  ({cost.label})")
    if "table" in cost.sources:
        lines.append("  closer: --measure times each configuration's step here; rows of "
                     "earlier runs under --out are used when there are any")
    return lines


def print_table(sweep: Any, trials: Sequence[Any], show_all: bool, out: TextIO,
                cost: CostEstimate | None = None) -> None:
    console = Console(width=200, file=out)
    for line in summary_lines(sweep, trials, cost):
        console.print(escape(line), highlight=False, soft_wrap=True)
    bounded = not show_all and len(trials) > TABLE_ROWS
    half = TABLE_ROWS // 2
    shown = [*trials[:half], None, *trials[-half:]] if bounded else list(trials)
    table = Table()
    for col in PLAN_COLUMNS:
        table.add_column(col)
    for t in shown:
        if t is None:
            table.add_row("...", f"{len(trials) - 2 * half:,} more", *[""] * 13)
            continue
        table.add_row(str(t.index), t.trial_id, escape(t.dataset), t.model, t.upsampling,
                      str(t.latent_dim), ",".join(map(str, t.milestones)), str(t.seed),
                      str(t.batch_size), f"{t.lr:g}", str(t.workers),
                      str(t.max_train_images or "all"), str(t.depth), f"{t.width:g}",
                      f"{t.beta1:g}")
    console.print(table)
    if bounded:
        console.print(f"first and last {half} of {len(trials):,} trials; every trial: --all, "
                      "or --format csv|json", highlight=False)


def _values_text(values: list[Any], limit: int = 12) -> str:
    shown = ", ".join(_text(v) for v in values[:limit])
    return shown + (f", ... ({len(values) - limit} more)" if len(values) > limit else "")


def _text(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list):
        return ",".join(map(str, value))
    return str(value)
