"""genbench analysis: result rows -> tables, plots and a report (pandas, no TensorFlow).

    import analysis
    df = analysis.load_results("results/smoke")
    analysis.compare(df, rows=["model"], cols=["upsampling"], metric="images_per_sec")
    analysis.write_report(["results/smoke"], Path("report"))
"""

from analysis.floors import floor_table, within_floor
from analysis.load import TRIAL_DIR, ResultsWarning, load_results, sample_path
from analysis.render import render, to_csv, to_html, to_latex, to_markdown
from analysis.report import write_report
from analysis.tables import (
    QUALITY_METRICS,
    available_metrics,
    best_config,
    bootstrap_mean,
    compare,
    format_mean_std,
    pareto_front,
    scaling,
    select_rows,
    trial_overview,
    upsampling_effect,
)
from analysis.time_to_target import time_to_target, time_to_target_table

__all__ = [
    "QUALITY_METRICS", "TRIAL_DIR", "ResultsWarning", "available_metrics", "best_config",
    "bootstrap_mean", "compare", "floor_table", "format_mean_std", "load_results",
    "pareto_front", "render",
    "sample_path", "scaling", "select_rows", "to_csv", "to_html", "to_latex", "to_markdown",
    "time_to_target", "time_to_target_table", "trial_overview", "upsampling_effect",
    "within_floor", "write_report",
]
