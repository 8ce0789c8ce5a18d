"""`write_report`: result directories in, report.md / report.html / report.tex out.

The report's sections (text, tables, figures) are built once here and rendered to
each format by `analysis.document`. Figures are PNGs under `<out>/figures/`.
Missing data never crashes the report: a metric, plot or table without data is
replaced by a sentence saying what is missing and why. Up to `aggregate_above` trials
(64) the HTML is one self-contained file with every trial; above it the report
aggregates (`analysis.layout`).
"""

from __future__ import annotations

import shutil
import warnings
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from analysis.aggregate_sections import aggregation_text, configurations_section
from analysis.configurations import configuration_keys
from analysis.cost_sections import size_section, time_section
from analysis.document import (
    Bullets,
    Section,
    Table,
    Text,
    render_html,
    render_latex,
    render_markdown,
)
from analysis.layout import AGGREGATE_ABOVE, TABLES_DIR, Layout, Place
from analysis.load import load_results
from analysis.overview import trial_overview
from analysis.rows import (
    DESIGN_COLUMNS,
    QUALITY_METRICS,
    available_metrics,
    select_rows,
    varying_columns,
)
from analysis.sample_sections import extreme_samples_section, gifs_section, samples_section
from analysis.sections import (
    best_section,
    curves_section,
    effect_section,
    names,
    pareto_section,
    quality_section,
    scaling_section,
    throughput_section,
    trials_section,
)
from suite.store import schema

FORMATS = {"md": "report.md", "html": "report.html", "latex": "report.tex"}
FORMAT_ALIASES = {"markdown": "md", "tex": "latex", "htm": "html"}
FIGURES_DIR = "figures"


def normalize_formats(formats: Sequence[str]) -> list[str]:
    """["md", "html", "latex"] from user spellings; ValueError naming an unknown one."""
    out = []
    for f in formats:
        f = FORMAT_ALIASES.get(f.strip().lower(), f.strip().lower())
        if f not in FORMATS:
            raise ValueError(f"unknown report format {f!r}; valid: {', '.join(FORMATS)}")
        if f not in out:
            out.append(f)
    return out


def write_report(dirs: Sequence[str | Path], out: Path,
                 formats: Sequence[str] = ("md", "html"),
                 aggregate_above: int = AGGREGATE_ABOVE) -> list[Path]:
    """Write the report for the results under `dirs` into `out`; return the report files.

    `formats`: any of "md", "html", "latex". Figures go to `out/figures/`. Above
    `aggregate_above` trials the report aggregates: grouped tables with t-intervals,
    samples of the best and worst configurations only, images linked, not inlined.
    """
    formats = normalize_formats(formats)
    out = Path(out)
    fig_dir = out / FIGURES_DIR
    fig_dir.mkdir(parents=True, exist_ok=True)
    for stale in [*fig_dir.glob("*.png"), *fig_dir.glob("*.gif")]:  # an earlier report's
        stale.unlink()
    shutil.rmtree(out / TABLES_DIR, ignore_errors=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        df = load_results(*dirs)
    for w in caught:  # pass them on to the caller, and into the report
        warnings.warn(w.message, w.category, stacklevel=2)
    notes = [str(w.message) for w in caught]
    n_trials = int(df[schema.TRIAL_ID].nunique()) if len(df) else 0
    place = Place(out, Layout(n_trials, aggregate_above))
    sections = build_sections(df, [Path(d) for d in dirs], place, notes)
    title = "genbench report"
    written = []
    for f in formats:
        path = out / FORMATS[f]
        if f == "html":
            text = render_html(title, sections, out, inline=place.layout.inline_images)
        else:
            text = {"md": render_markdown, "latex": render_latex}[f](title, sections, out)
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def build_sections(df: pd.DataFrame, dirs: list[Path], place: Place,
                   notes: list[str]) -> list[Section]:
    summary = Section("Summary")
    summary.add(Text("Sources: " + ", ".join(f"`{d}`" for d in dirs) + "."))
    if notes:
        summary.add(Text("Skipped while loading:")).add(Bullets(notes))
    if df.empty:
        summary.add(Text("No result rows were found, so there is nothing to compare yet. "
                         "Run a sweep first: `genbench run SWEEP --out DIR`."))
        return [summary]
    overview = trial_overview(df)
    aggregate = place.layout.aggregate
    summary.add(Text(
        f"{len(df)} rows from {len(overview)} trials in sweeps "
        f"{names(df[schema.SWEEP])}; datasets {names(df[schema.DATASET])}; models "
        f"{names(df[schema.MODEL])}; upsampling {names(df[schema.UPSAMPLING])}. "
        "Tables use each trial's final epoch and status-ok rows; "
        + ("values are the mean and its t-interval across seeds (see below)." if aggregate
           else "values are mean ± std over seeds (sample std; a single seed shows the mean).")))
    counts = overview[schema.STATUS].value_counts().rename_axis(schema.STATUS).rename("trials")
    summary.add(Table(counts.to_frame(), "Trials by status"))

    ok_final = select_rows(df, "final")
    design = varying_columns(ok_final if len(ok_final) else df, DESIGN_COLUMNS)
    rows = list(dict.fromkeys([schema.MODEL] + [c for c in design if c != schema.UPSAMPLING]))
    quality = available_metrics(df, QUALITY_METRICS, at_epoch="final")
    missing = [m for m in QUALITY_METRICS if m not in quality]

    if aggregate:
        keys = configuration_keys(ok_final if len(ok_final) else df)
        ranked_by = quality[0] if quality else schema.IMAGES_PER_SEC
        summary.add(aggregation_text(place, keys, ranked_by, bool(quality)))
        trials, extremes = configurations_section(df, overview, keys, ranked_by, place)
    else:
        trials = trials_section(overview, design)
    sections = [summary, trials]
    sections.append(throughput_section(df, rows, place))
    sections.append(quality_section(df, rows, quality, missing, place))
    sections.append(curves_section(df, place))
    sections.append(best_section(df, quality))
    sections.append(effect_section(df, quality))
    sections.append(scaling_section(df, place))
    sections.append(pareto_section(df, quality, place))
    sections.append(time_section(df, quality, place))
    sections.append(size_section(df, quality, place.figures))
    if aggregate:
        sections.append(extreme_samples_section(df, extremes, keys, ranked_by, place))
    else:
        sections.append(samples_section(df, place.figures))
        sections.append(gifs_section(df, place.figures))
    return sections
