"""The report's core sections (trials, throughput, quality, curves, best, upsampling
effect, scaling, Pareto front), each a `Section` built from result rows; a big sweep's
`Layout` switches them to grouped tables with t-intervals, long tables cut to their
first rows with the full table as CSV beside the report, and plots with one line per
model and upsampling instead of one per configuration."""

from __future__ import annotations

import pandas as pd

from analysis import aggregate_plots, plots
from analysis.document import Section, Table, Text, add_plot, slug
from analysis.effects import MIN_PAIRS, upsampling_effect
from analysis.floors import (
    FLOOR_LABEL,
    floor_by_row,
    floor_table,
    floored_metrics,
    with_floor_column,
    within_floor_sentence,
)
from analysis.intervals import format_mean_ci
from analysis.layout import Place
from analysis.rows import (
    DESIGN_COLUMNS,
    QUALITY_METRICS,
    available_metrics,
    better_is_lower,
    select_rows,
    varying_columns,
)
from analysis.tables import best_config, compare, format_mean_std, pareto_front, scaling
from suite.store import schema

BASELINE = "transpose"
TRAINING_CURVES = (schema.LOSS_G, schema.LOSS_D, schema.ELBO)
ERROR_CHARS = 80
LINES = (schema.UPSAMPLING,)  # aggregated epoch curves: one line per upsampling per model


def add_table(section: Section, table: pd.DataFrame, caption: str, place: Place,
              name: str) -> None:
    """`table`, or (aggregated, longer than the layout allows) its first rows and the
    whole of it as `tables/<name>.csv` beside the report."""
    layout = place.layout
    if not layout.aggregate or len(table) <= layout.max_table_rows:
        section.add(Table(table, caption))
        return
    place.tables.mkdir(parents=True, exist_ok=True)
    path = place.tables / f"{slug(name)}.csv"
    table.to_csv(path)
    section.add(Table(table.head(layout.max_table_rows), caption))
    section.add(Text(f"First {layout.max_table_rows} of {len(table)} rows; all of them: "
                     f"`{path.relative_to(place.out).as_posix()}`."))


def format_cells(table: pd.DataFrame, place: Place) -> pd.DataFrame:
    """A `compare` table as "mean ± std" (small report) or "mean [95% CI]" (aggregated)."""
    if place.layout.aggregate:
        return format_mean_ci(table, place.layout.confidence)
    return format_mean_std(table)


def cell_words(place: Place) -> str:
    if place.layout.aggregate:
        return (f"mean [{place.layout.confidence:.0%} t-interval across seeds]")
    return "mean ± std over seeds"


def trials_section(overview: pd.DataFrame, design: list[str]) -> Section:
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


def throughput_section(df: pd.DataFrame, rows: list[str], place: Place) -> Section:
    section = Section("Throughput")
    table = compare(df, rows, [schema.UPSAMPLING], schema.IMAGES_PER_SEC)
    if table.empty:
        return section.add(Text("No throughput values (no trial reached its final epoch)."))
    caption = "Training images/s (warm-up and evaluation excluded), final epoch"
    if place.layout.aggregate:
        add_table(section, format_cells(table, place), f"{caption}; {cell_words(place)}",
                  place, "throughput")
        add_plot(section, lambda: aggregate_plots.plot_axis_effects(
            df, schema.IMAGES_PER_SEC, _effect_axes(df), place.figures / "throughput.png",
            place.layout.confidence), "Throughput against each axis, one line per model "
            f"(mean over every other axis and seed; bars: {place.layout.confidence:.0%} "
            "t-interval)")
        return section
    section.add(Table(format_mean_std(table), caption))
    add_plot(section, lambda: plots.plot_throughput(df, place.figures / "throughput.png"),
             "Throughput by model and upsampling")
    return add_utilisation(section, df, rows, place)


def add_utilisation(section: Section, df: pd.DataFrame, rows: list[str],
                    place: Place | None = None) -> Section:
    """MFU beside images/s: how much of the machine the throughput used (results older
    than the MFU columns get no table), and which rows' peak was only a lower bound."""
    if schema.MFU not in df or not df[schema.MFU].notna().any():
        return section
    table = compare(df, rows, [schema.UPSAMPLING], schema.MFU)
    if table.empty:
        return section
    peaks = ", ".join(sorted(df[schema.PEAK_SOURCE].dropna().astype(str).unique())[:4])
    section.add(Table(format_mean_std(table), "MFU (model FLOPs utilisation: achieved "
                      "matmul FLOP/s / (peak x workers)), final epoch; "
                      f"peak: {peaks or 'unknown'}"))
    note = untrusted_peak_note(select_rows(df, "final"))
    if note:
        section.add(Text(note))
    if place is not None:
        add_plot(section, lambda: plots.plot_throughput(df, place.figures / "mfu.png",
                                                        metric=schema.MFU),
                 "MFU by model and upsampling")
    return section


def untrusted_peak_note(final: pd.DataFrame) -> str | None:
    """Says how many rows divided by a peak that is only a lower bound (calibrated while
    other work held the cores, or raised to the trial's own achieved rate)."""
    if schema.PEAK_TRUSTED not in final or final[schema.MFU].isna().all():
        return None
    with_mfu = final[final[schema.MFU].notna()]
    doubtful = with_mfu[with_mfu[schema.PEAK_TRUSTED].astype("boolean").eq(False).fillna(False)]
    if doubtful.empty:
        return None
    bases = ", ".join(sorted(doubtful[schema.PEAK_BASIS].dropna().astype(str).unique()))
    return (f"{len(doubtful)} of {len(with_mfu)} final rows divided by a peak that is only a "
            f"lower bound ({bases}): their MFU is an upper bound. Calibrate on a quiet node "
            "(the next trial there measures again) for a trusted peak.")


def quality_section(df: pd.DataFrame, rows: list[str], quality: list[str],
                    missing: list[str], place: Place) -> Section:
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
            "would score. An FD or KID within its floor (at most |floor| plus its std over "
            "subsets: KID is unbiased, so its real-vs-real floor is noise around zero and often "
            "negative) cannot be told from real data by that backbone at that n. `*_inf` "
            "columns are FD extrapolated to infinitely many "
            "generated samples (FD = FD_inf + c/n fitted at sizes n/5, n/4, n/3, n/2, n)."))
        section.add(Table(floor_table(df, quality), "Noise floors (real vs real) per dataset, "
                                                    "eval split and n_floor"))
    aggregate = place.layout.aggregate
    if aggregate:
        add_plot(section, lambda: aggregate_plots.plot_axis_effects(
            df, quality[0], _effect_axes(df), place.figures / f"axes_{quality[0]}.png",
            place.layout.confidence), f"`{quality[0]}` (the primary quality metric) against "
            "each axis, one line per model (mean over every other axis and seed; bars: "
            f"{place.layout.confidence:.0%} t-interval)")
    for metric in quality:
        direction = "lower" if better_is_lower(metric) else "higher"
        table = format_cells(compare(df, rows, [schema.UPSAMPLING], metric), place)
        caption = f"`{metric}` at the final epoch ({direction} is better)"
        if aggregate:
            caption += f"; {cell_words(place)}"
        if metric in floored:
            table = with_floor_column(table, floor_by_row(df, rows, metric))
            caption += f"; last column: its {FLOOR_LABEL}"
        add_table(section, table, caption, place, f"quality_{metric}")
        sentence = within_floor_sentence(df, metric, rows)
        if sentence:
            section.add(Text(sentence))
        add_plot(section, lambda m=metric: plots.plot_metric_vs_epoch(
            df, m, place.figures / f"epochs_{m}.png", lines=LINES if aggregate else None),
            f"`{metric}` against epoch" + (" (one line per upsampling: the mean over every "
                                           "other axis)" if aggregate else "")
            + (f" (dashed: its {FLOOR_LABEL})" if metric in floored else ""))
    if missing:
        section.add(Text("No data for: " + ", ".join(f"`{m}`" for m in missing) + "."))
    return section


def curves_section(df: pd.DataFrame, place: Place) -> Section:
    section = Section("Training curves")
    curves = available_metrics(df, TRAINING_CURVES)
    if not curves:
        return section.add(Text("No training losses recorded."))
    aggregate = place.layout.aggregate
    section.add(Text("Training losses at each milestone (mean over seeds, band: ±std)."
                     + (" One line per upsampling: the mean over every other axis."
                        if aggregate else "")))
    for metric in curves:
        add_plot(section, lambda m=metric: plots.plot_metric_vs_epoch(
            df, m, place.figures / f"curve_{m}.png", lines=LINES if aggregate else None),
            f"`{metric}` against epoch")
    return section


def best_section(df: pd.DataFrame, quality: list[str]) -> Section:
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


def effect_section(df: pd.DataFrame, quality: list[str]) -> Section:
    section = Section("Upsampling effect")
    variants = set(df[schema.UPSAMPLING].dropna())
    if BASELINE not in variants or len(variants) < 2:
        return section.add(Text(
            f"Needs `{BASELINE}` and at least one other upsampling variant; found "
            f"{names(df[schema.UPSAMPLING])}."))
    section.add(Text(
        f"Each variant against `{BASELINE}` on paired trials (same model, latent_dim, seed, "
        "epoch and every other setting): mean difference (variant − baseline) of each metric, "
        "and the geometric-mean ratio of images/s; 95% Student-t intervals over pairs (n_pairs "
        f"− 1 degrees of freedom; ratios on the log scale), blank with fewer than {MIN_PAIRS} "
        "pairs: from two pairs a 95% t-interval spans ±12.7 standard errors estimated from two "
        "numbers, and a bootstrap over two values is far too narrow, so no interval is "
        "printed."))
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
    out["95% t-interval"] = [
        f"(n < {MIN_PAIRS})" if n < MIN_PAIRS else "" if pd.isna(lo) else f"[{lo:.4g}, {hi:.4g}]"
        for lo, hi, n in zip(table["ci_low"], table["ci_high"], table["n_pairs"], strict=True)]
    return out


def scaling_section(df: pd.DataFrame, place: Place) -> Section:
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
    add_table(section, table[shown], "Images/s against workers; speed-up against 1 worker, "
                                     "efficiency = speed-up / workers", place, "scaling")
    by = [schema.MODEL, schema.UPSAMPLING] if place.layout.aggregate else None
    add_plot(section, lambda: plots.plot_scaling(df, place.figures / "scaling.png", by=by),
             "Scaling" + (" (one line per model and upsampling: the mean over every other "
                          "axis)" if by else ""))
    return section


def pareto_section(df: pd.DataFrame, quality: list[str], place: Place) -> Section:
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
        add_table(section, front.drop(columns="on_front"),
                  f"{dataset}: Pareto front of `{metric}` against images/s", place,
                  f"pareto_{dataset}")
        add_plot(section, lambda s=sub, d=dataset: plots.plot_pareto(
            s, metric, place.figures / f"pareto_{slug(d)}.png", lower_is_better=lower),
            f"{dataset}: `{metric}` against images/s; red: Pareto front")
    return section


def names(values: pd.Series) -> str:
    found = sorted(str(v) for v in values.dropna().unique())
    return ", ".join(found) if found else "none"


def _effect_axes(df: pd.DataFrame) -> list[str]:
    """The axes an aggregated plot puts on its x axis: every design column that varies
    among the final rows, the model excepted (it is the line)."""
    final = select_rows(df, "final")
    return [c for c in varying_columns(final, DESIGN_COLUMNS) if c != schema.MODEL]
