"""The report's sample images: final-epoch mosaics and each configuration's GIF across
milestones. A small report shows every configuration (up to a cap); an aggregated one
only the best and worst few configurations per model by the primary quality metric."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd

from analysis import aggregate_plots, plots
from analysis.configurations import LABEL, RANK, representative_rows
from analysis.document import Image, Section, Text, add_plot, slug
from analysis.layout import Place
from analysis.load import sample_path
from analysis.rows import DESIGN_COLUMNS, config_label, select_rows, varying_columns
from suite.artifacts.samples import GIF_NAME
from suite.store import schema

MAX_MOSAICS = 8
MAX_GIFS = 16


def samples_section(df: pd.DataFrame, fig_dir: Path) -> Section:
    """Small report: one mosaic (rows models, columns upsampling) per combination of the
    other varying axes, at most MAX_MOSAICS."""
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


def gifs_section(df: pd.DataFrame, fig_dir: Path) -> Section:
    """Small report: each configuration's samples across milestones, as the animated GIF
    its trial wrote beside its PNG grids (lowest seed; at most MAX_GIFS)."""
    section = Section("Samples across milestones")
    final = select_rows(df, "final")
    if schema.SAMPLES_PNG in final:
        final = final[final[schema.SAMPLES_PNG].notna()]
    if final.empty:
        return section.add(Text("No sample grids at the final epoch."))
    final = final.sort_values([schema.SEED, schema.TRIAL_ID], kind="stable")
    keys = list(dict.fromkeys([schema.MODEL, schema.UPSAMPLING,
                               *varying_columns(final, DESIGN_COLUMNS)]))
    chosen = final.drop_duplicates(keys).assign(_label=lambda d: config_label(d, keys))
    chosen = chosen.sort_values("_label", kind="stable")
    section.add(Text(f"Each trial's sample grids from its first milestone to its last "
                     f"(`samples/{GIF_NAME}` in its trial directory; fixed noise, lowest seed)."))
    missing = _add_gifs(section, chosen.head(MAX_GIFS), chosen.head(MAX_GIFS)["_label"],
                        fig_dir)
    if missing:
        section.add(Text("No GIF (trials written before GIFs were made): "
                         + ", ".join(missing) + "."))
    if len(chosen) > MAX_GIFS:
        section.add(Text(f"{len(chosen) - MAX_GIFS} more configurations not shown "
                         f"(at most {MAX_GIFS} GIFs)."))
    return section


def extreme_samples_section(df: pd.DataFrame, extremes: pd.DataFrame, keys: list[str],
                            metric: str, place: Place) -> Section:
    """Aggregated report: per model, the final sample grids of its best and worst
    configurations by `metric` (one figure), then their GIFs across milestones."""
    k = place.layout.extremes
    section = Section("Samples of the best and worst configurations")
    section.add(Text(
        f"Only the {k} best and the {k} worst configurations per model by `{metric}` (mean "
        "over seeds at the final epoch; listed in \"Configurations\") get sample images: "
        "their lowest seed's final grid, then its GIF across milestones "
        f"(`samples/{GIF_NAME}`). Every other trial's samples stay in its trial directory."))
    chosen = representative_rows(df, extremes, keys) if len(extremes) else extremes
    if schema.SAMPLES_PNG in chosen:
        chosen = chosen[chosen[schema.SAMPLES_PNG].notna()]
    if chosen.empty:
        return section.add(Text("No sample grids at the final epoch for these configurations."))
    for model, rows in chosen.groupby(schema.MODEL, sort=True):
        items = [(f"{r[RANK]}: {_short(r[LABEL], model)}", sample_path(r))
                 for _, r in rows.iterrows()]
        add_plot(section, lambda i=items, m=model: aggregate_plots.plot_sample_panels(
            i, place.figures / f"extremes_{slug(m)}.png", title=str(m)),
            f"{model}: final samples, best (left) to worst (right) by `{metric}`")
    captions = chosen[RANK] + ": " + chosen[LABEL]
    missing = _add_gifs(section, chosen, captions, place.figures)
    if missing:
        section.add(Text("No GIF (trials written before GIFs were made): "
                         + ", ".join(missing) + "."))
    return section


def _add_gifs(section: Section, rows: pd.DataFrame, captions: pd.Series,
              fig_dir: Path) -> list[str]:
    """Copy each row's trial GIF beside the report and add it; the captions of those
    without one."""
    missing = []
    for (_, row), caption in zip(rows.iterrows(), captions, strict=True):
        png = sample_path(row)
        gif = png.parent / GIF_NAME if png is not None else None
        if gif is None or not gif.is_file():
            missing.append(caption)
            continue
        copy = fig_dir / f"samples_{slug(row[schema.TRIAL_ID])}.gif"
        shutil.copyfile(gif, copy)
        section.add(Image(copy, f"{caption} (trial `{row[schema.TRIAL_ID]}`)"))
    return missing


def _short(label: str, model: str) -> str:
    """A panel title without the model the figure is about."""
    return label.removeprefix(f"{model}/")
