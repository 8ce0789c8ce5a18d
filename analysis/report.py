"""`write_report`: result directories in, report.md / report.html / report.tex out.

The report's sections (text, tables, figures) are built once here and rendered to
each format by `analysis.document`. Figures are PNGs under `<out>/figures/`.
Missing data never crashes the report: a metric, plot or table without data is
replaced by a sentence saying what is missing and why.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from analysis import plots
from analysis.cost_sections import gifs_section, size_section, time_section
from analysis.document import (
    Bullets,
    Section,
    Table,
    Text,
    add_plot,
    render_html,
    render_latex,
    render_markdown,
    slug,
)
from analysis.floors import (
    FLOOR_LABEL,
    floor_by_row,
    floor_table,
    floored_metrics,
    with_floor_column,
    within_floor_sentence,
)
from analysis.load import load_results
from analysis.tables import (
    DESIGN_COLUMNS,
    QUALITY_METRICS,
    available_metrics,
    best_config,
    better_is_lower,
    compare,
    format_mean_std,
    pareto_front,
    scaling,
    select_rows,
    trial_overview,
    upsampling_effect,
    varying_columns,
)
from suite.store import schema

FORMATS = {"md": "report.md", "html": "report.html", "latex": "report.tex"}
FORMAT_ALIASES = {"markdown": "md", "tex": "latex", "htm": "html"}
FIGURES_DIR = "figures"
BASELINE = "transpose"
TRAINING_CURVES = (schema.LOSS_G, schema.LOSS_D, schema.ELBO)
MAX_MOSAICS = 8
ERROR_CHARS = 80


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
                 formats: Sequence[str] = ("md", "html")) -> list[Path]:
    """Write the report for the results under `dirs` into `out`; return the report files.

    `formats`: any of "md", "html", "latex". Figures go to `out/figures/`.
    """
    formats = normalize_formats(formats)
    out = Path(out)
    fig_dir = out / FIGURES_DIR
    fig_dir.mkdir(parents=True, exist_ok=True)
    for stale in [*fig_dir.glob("*.png"), *fig_dir.glob("*.gif")]:  # an earlier report's
        stale.unlink()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        df = load_results(*dirs)
    for w in caught:  # pass them on to the caller, and into the report
        warnings.warn(w.message, w.category, stacklevel=2)
    notes = [str(w.message) for w in caught]
    sections = build_sections(df, [Path(d) for d in dirs], fig_dir, notes)
    title = "genbench report"
    written = []
    for f in formats:
        path = out / FORMATS[f]
        text = {"md": render_markdown, "html": render_html, "latex": render_latex}[f](
            title, sections, out)
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


# --- content --------------------------------------------------------------------------------


def build_sections(df: pd.DataFrame, dirs: list[Path], fig_dir: Path,
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
    summary.add(Text(
        f"{len(df)} rows from {len(overview)} trials in sweeps "
        f"{_names(df[schema.SWEEP])}; datasets {_names(df[schema.DATASET])}; models "
        f"{_names(df[schema.MODEL])}; upsampling {_names(df[schema.UPSAMPLING])}. "
        "Tables use each trial's final epoch and status-ok rows; "
        "values are mean ± std over seeds (sample std; a single seed shows the mean)."))
    counts = overview[schema.STATUS].value_counts().rename_axis(schema.STATUS).rename("trials")
    summary.add(Table(counts.to_frame(), "Trials by status"))

    ok_final = select_rows(df, "final")
    design = varying_columns(ok_final if len(ok_final) else df, DESIGN_COLUMNS)
    rows = list(dict.fromkeys([schema.MODEL] + [c for c in design if c != schema.UPSAMPLING]))
    quality = available_metrics(df, QUALITY_METRICS, at_epoch="final")
    missing = [m for m in QUALITY_METRICS if m not in quality]

    sections = [summary, _trials_section(overview, design)]
    sections.append(_throughput_section(df, rows, fig_dir))
    sections.append(_quality_section(df, rows, quality, missing, fig_dir))
    sections.append(_curves_section(df, fig_dir))
    sections.append(_best_section(df, quality))
    sections.append(_effect_section(df, quality))
    sections.append(_scaling_section(df, fig_dir))
    sections.append(_pareto_section(df, quality, fig_dir))
    sections.append(time_section(df, quality, fig_dir))
    sections.append(size_section(df, quality, fig_dir))
    sections.append(_samples_section(df, fig_dir))
    sections.append(gifs_section(df, fig_dir))
    return sections


def _trials_section(overview: pd.DataFrame, design: list[str]) -> Section:
    shown = [schema.TRIAL_ID]
    if overview[schema.SWEEP].nunique() > 1:
        shown.append(schema.SWEEP)
    shown += list(dict.fromkeys([schema.MODEL, schema.UPSAMPLING, *design]))
    if overview[schema.SEED].nunique() > 1:
        shown.append(schema.SEED)
    shown += ["epoch_reached", schema.EPOCHS, schema.STATUS, schema.IMAGES_PER_SEC]
    table = overview[[c for c in dict.fromkeys(shown) if c in overview]].copy()
    if overview[schema.ERROR].notna().any():
        table[schema.ERROR] = overview[schema.ERROR].map(
            lambda e: e if not isinstance(e, str) or len(e) <= ERROR_CHARS
            else e[:ERROR_CHARS - 1] + "…")
    return Section("Trials").add(Table(table, "Every trial: last epoch reached, status, "
                                               "final-epoch throughput"))


def _throughput_section(df: pd.DataFrame, rows: list[str], fig_dir: Path) -> Section:
    section = Section("Throughput")
    table = compare(df, rows, [schema.UPSAMPLING], schema.IMAGES_PER_SEC)
    if table.empty:
        return section.add(Text("No throughput values (no trial reached its final epoch)."))
    section.add(Table(format_mean_std(table), "Training images/s (warm-up and evaluation "
                                              "excluded), final epoch"))
    add_plot(section, lambda: plots.plot_throughput(df, fig_dir / "throughput.png"),
              "Throughput by model and upsampling")
    return section


def _quality_section(df: pd.DataFrame, rows: list[str], quality: list[str],
                     missing: list[str], fig_dir: Path) -> Section:
    section = Section("Sample quality")
    if not quality:
        early = available_metrics(df, QUALITY_METRICS, at_epoch=None)
        if early:
            return section.add(Text(
                "Quality metrics (" + ", ".join(f"`{m}`" for m in early) + ") exist only for "
                "epochs before the final one: no trial with them reached its final epoch."))
        return section.add(Text(
            "No sample-quality metrics in these results: the columns "
            + ", ".join(f"`{m}`" for m in QUALITY_METRICS)
            + " are empty. They are filled by `suite.metrics` at each milestone; results "
              "written before the metrics landed have none."))
    floored = floored_metrics(df, quality)
    if floored:
        section.add(Text(
            f"Beside each number, its {FLOOR_LABEL}: the same metric between two disjoint "
            "real subsets of the eval split (`n_floor` images each), what a perfect generator "
            "would score. An FD or KID at or below its floor cannot be told from real data by "
            "that backbone at that n. `*_inf` columns are FD extrapolated to infinitely many "
            "generated samples (FD = FD_inf + c/n fitted at sizes n/5, n/4, n/3, n/2, n)."))
        section.add(Table(floor_table(df, quality), "Noise floors (real vs real) per dataset, "
                                                    "eval split and n_floor"))
    for metric in quality:
        direction = "lower" if better_is_lower(metric) else "higher"
        table = format_mean_std(compare(df, rows, [schema.UPSAMPLING], metric))
        caption = f"`{metric}` at the final epoch ({direction} is better)"
        if metric in floored:
            table = with_floor_column(table, floor_by_row(df, rows, metric))
            caption += f"; last column: its {FLOOR_LABEL}"
        section.add(Table(table, caption))
        sentence = within_floor_sentence(df, metric, rows)
        if sentence:
            section.add(Text(sentence))
        add_plot(section, lambda m=metric: plots.plot_metric_vs_epoch(
            df, m, fig_dir / f"epochs_{m}.png"), f"`{metric}` against epoch"
            + (f" (dashed: its {FLOOR_LABEL})" if metric in floored else ""))
    if missing:
        section.add(Text("No data for: " + ", ".join(f"`{m}`" for m in missing) + "."))
    return section


def _curves_section(df: pd.DataFrame, fig_dir: Path) -> Section:
    section = Section("Training curves")
    curves = available_metrics(df, TRAINING_CURVES)
    if not curves:
        return section.add(Text("No training losses recorded."))
    section.add(Text("Training losses at each milestone (mean over seeds, band: ±std)."))
    for metric in curves:
        add_plot(section, lambda m=metric: plots.plot_metric_vs_epoch(
            df, m, fig_dir / f"curve_{m}.png"), f"`{metric}` against epoch")
    return section


def _best_section(df: pd.DataFrame, quality: list[str]) -> Section:
    section = Section("Best configuration per model")
    for metric in [*quality[:1], schema.IMAGES_PER_SEC]:
        table = best_config(df, metric)
        if table.empty:
            continue
        direction = "lowest" if table.attrs["lower_is_better"] else "highest"
        section.add(Table(table, f"{direction} `{metric}` (mean over seeds) per model"))
    if not section.blocks:
        return section.add(Text("No status-ok rows at the final epoch to rank."))
    if not quality:
        section.add(Text("No quality metric, so configurations are ranked by throughput only."))
    return section


def _effect_section(df: pd.DataFrame, quality: list[str]) -> Section:
    section = Section("Upsampling effect")
    variants = set(df[schema.UPSAMPLING].dropna())
    if BASELINE not in variants or len(variants) < 2:
        return section.add(Text(
            f"Needs `{BASELINE}` and at least one other upsampling variant; found "
            f"{_names(df[schema.UPSAMPLING])}."))
    section.add(Text(
        f"Each variant against `{BASELINE}` on paired trials (same model, latent_dim, seed, "
        "epoch and every other setting): mean difference (variant − baseline) of each metric, "
        "and the geometric-mean ratio of images/s; 95% percentile-bootstrap intervals over "
        "pairs (2000 resamples, seeded), blank with fewer than two pairs."))
    pooled = upsampling_effect(df, quality, BASELINE)
    if pooled.empty:
        return section.add(Text("No paired trials found."))
    section.add(Table(_format_effect(pooled), "All models pooled"))
    if df[schema.MODEL].nunique() > 1:
        per_model = upsampling_effect(df, quality, BASELINE, by=[schema.MODEL])
        section.add(Table(_format_effect(per_model), "Per model"))
    skipped = [m for m in pooled.attrs["skipped"] if m != schema.IMAGES_PER_SEC]
    if skipped:
        section.add(Text("No pairs with values for: " + ", ".join(f"`{m}`" for m in skipped)))
    return section


def _format_effect(table: pd.DataFrame) -> pd.DataFrame:
    out = table.drop(columns=["baseline", "ci_low", "ci_high"]).copy()
    out["95% CI"] = [
        "" if pd.isna(lo) else f"[{lo:.4g}, {hi:.4g}]"
        for lo, hi in zip(table["ci_low"], table["ci_high"], strict=True)]
    return out


def _scaling_section(df: pd.DataFrame, fig_dir: Path) -> Section:
    section = Section("Scaling")
    workers = sorted(select_rows(df, "final")[schema.WORKERS].dropna().unique())
    if not workers:
        return section.add(Text("No status-ok rows at the final epoch: no scaling table."))
    if len(workers) < 2:
        return section.add(Text(
            f"All trials ran on {', '.join(map(str, workers)) or 'no'} worker(s): a scaling "
            "table needs at least two worker counts."))
    table = scaling(df)
    keep = varying_columns(table, [c for c in table.columns if c in DESIGN_COLUMNS
                                   and c != schema.WORKERS])
    shown = [*keep, schema.WORKERS, schema.IMAGES_PER_SEC, "std", "n",
             schema.IMAGES_PER_SEC_PER_WORKER, "speedup", "efficiency"]
    section.add(Table(table[shown], "Images/s against workers; speed-up against 1 worker, "
                                    "efficiency = speed-up / workers"))
    add_plot(section, lambda: plots.plot_scaling(df, fig_dir / "scaling.png"), "Scaling")
    return section


def _pareto_section(df: pd.DataFrame, quality: list[str], fig_dir: Path) -> Section:
    section = Section("Quality against throughput")
    if not quality:
        return section.add(Text("No quality metric, so no Pareto front of quality against "
                                "throughput."))
    metric = quality[0]
    lower = better_is_lower(metric)
    for dataset in sorted(df[schema.DATASET].dropna().unique()):
        sub = df[df[schema.DATASET] == dataset]
        front = pareto_front(sub, metric, lower_is_better=lower)
        if front.empty:
            section.add(Text(f"{dataset}: no configuration has both `{metric}` and images/s."))
            continue
        section.add(Table(front.drop(columns="on_front"),
                          f"{dataset}: Pareto front of `{metric}` against images/s"))
        add_plot(section, lambda s=sub, d=dataset: plots.plot_pareto(
            s, metric, fig_dir / f"pareto_{slug(d)}.png", lower_is_better=lower),
            f"{dataset}: `{metric}` against images/s; red: Pareto front")
    return section


def _samples_section(df: pd.DataFrame, fig_dir: Path) -> Section:
    section = Section("Samples")
    final = select_rows(df, "final")
    final = final[final[schema.SAMPLES_PNG].notna()]
    if final.empty:
        return section.add(Text("No sample grids at the final epoch."))
    group_cols = [c for c in varying_columns(final, DESIGN_COLUMNS)
                  if c not in (schema.MODEL, schema.UPSAMPLING)]
    groups = list(final.groupby(group_cols, dropna=False, sort=True)) if group_cols \
        else [((), final)]
    section.add(Text("Final-epoch sample grids (rows: models, columns: upsampling; lowest seed)."))
    for i, (key, sub) in enumerate(groups[:MAX_MOSAICS]):
        key = key if isinstance(key, tuple) else (key,)
        name = ", ".join(f"{c}={v}" for c, v in zip(group_cols, key, strict=True))
        add_plot(section, lambda s=sub, i=i, n=name: plots.plot_sample_mosaic(
            s, fig_dir / f"samples_{i:02d}.png", title=n or None),
            "Samples" + (f": {name}" if name else ""))
    if len(groups) > MAX_MOSAICS:
        section.add(Text(f"{len(groups) - MAX_MOSAICS} more configurations not shown "
                         f"(at most {MAX_MOSAICS} mosaics)."))
    return section


def _names(values: pd.Series) -> str:
    names = sorted(str(v) for v in values.dropna().unique())
    return ", ".join(names) if names else "none"
