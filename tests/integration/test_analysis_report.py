"""Renderers (golden strings), plots, and the report from a real smoke sweep,
checked in headless Chromium; `genbench report` through the CLI; no TensorFlow."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from replicated_sweep import replicate_sweep
from scipy import stats

import analysis
from analysis import plots
from analysis.report import write_report
from suite.store import schema
from suite.store.results import RESULT_FILE, trial_dir, write_rows

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
GENBENCH = VENV_BIN / "genbench"
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync")

SMOKE_SWEEP = """\
name: tiny
dataset: mnist
grid:
  model: [dcgan, vae]
  upsampling: [transpose, nearest]
  epochs: [1, 2]
fixed:
  latent_dim: 8
  batch_size: 32
  width: 0.25
  max_train_images: 256
  seed: 0
eval:
  n_samples: 100
"""


# --- golden renders -----------------------------------------------------------------------

SMALL = pd.DataFrame({
    "model": ["dcgan", "c_vae"], "images_per_sec": [477.7315, 12345.6],
    "fd_domain": [1.5, np.nan], "note": ["a|b", "x & <y>"], "on_front": [True, False]})

GOLDEN_MD = """\
| model | images_per_sec | fd_domain | note | on_front |
|:---|---:|---:|:---|:---|
| dcgan | 477.7 | 1.5 | a\\|b | yes |
| c_vae | 12346 |  | x & <y> | no |
"""

GOLDEN_LATEX = r"""\begin{tabular}{lrrll}
\toprule
model & images\_per\_sec & fd\_domain & note & on\_front \\
\midrule
dcgan & 477.7 & 1.5 & a|b & yes \\
c\_vae & 12346 &  & x \& <y> & no \\
\bottomrule
\end{tabular}
"""

GOLDEN_HTML = """\
<table class="genbench">
<thead>
<tr><th>model</th><th class="num">images_per_sec</th><th class="num">fd_domain</th>\
<th>note</th><th>on_front</th></tr>
</thead>
<tbody>
<tr><td>dcgan</td><td class="num">477.7</td><td class="num">1.5</td><td>a|b</td>\
<td>yes</td></tr>
<tr><td>c_vae</td><td class="num">12346</td><td class="num"></td>\
<td>x &amp; &lt;y&gt;</td><td>no</td></tr>
</tbody>
</table>
"""

GOLDEN_CSV = """\
model,images_per_sec,fd_domain,note,on_front
dcgan,477.7315,1.5,a|b,True
c_vae,12345.6,,x & <y>,False
"""


@pytest.mark.parametrize(("fmt", "golden"), [
    ("md", GOLDEN_MD), ("latex", GOLDEN_LATEX), ("html", GOLDEN_HTML), ("csv", GOLDEN_CSV)])
def test_golden_render(fmt, golden):
    assert analysis.render(SMALL, fmt) == golden


def compare_table() -> pd.DataFrame:
    rows = [{schema.MODEL: m, schema.UPSAMPLING: u, schema.SEED: s, schema.EPOCH: 2,
             schema.EPOCHS: 2, schema.STATUS: "ok", schema.TRIAL_ID: f"{m}{u}{s}",
             schema.FD_DOMAIN: v}
            for m, u, s, v in [("dcgan", "transpose", 0, 10.0), ("dcgan", "transpose", 1, 14.0),
                               ("vae", "nearest", 0, 1.5)]]
    return analysis.compare(pd.DataFrame(rows), [schema.MODEL], [schema.UPSAMPLING],
                            schema.FD_DOMAIN)


def test_golden_compare_table_renders():
    text = analysis.format_mean_std(compare_table())
    assert analysis.render(text, "md") == (
        "| model | nearest | transpose |\n|:---|:---|:---|\n"
        "| dcgan |  | 12 ± 2.8 |\n| vae | 1.5 |  |\n")
    assert analysis.render(text, "latex") == (
        "\\begin{tabular}{lll}\n\\toprule\nmodel & nearest & transpose \\\\\n\\midrule\n"
        "dcgan &  & 12 $\\pm$ 2.8 \\\\\nvae & 1.5 &  \\\\\n\\bottomrule\n\\end{tabular}\n")
    assert analysis.render(compare_table(), "csv") == (
        "model,nearest / mean,nearest / std,nearest / n,transpose / mean,transpose / std,"
        "transpose / n\ndcgan,,,0,12.0,2.8284271247461903,2\nvae,1.5,,1,,,0\n")


def test_unknown_format_is_rejected():
    with pytest.raises(ValueError, match="unknown format 'pdf'"):
        analysis.render(SMALL, "pdf")
    with pytest.raises(ValueError, match="unknown report format 'pdf'"):
        write_report([], Path(tempfile.gettempdir()) / "never", ["pdf"])


# --- synthetic results with every metric: the report's full path ---------------------------


def synthetic_results(root: Path, with_pngs: bool = True) -> Path:
    """A sweep on disk with quality metrics, 2 seeds, 1 and 2 workers, and sample PNGs."""
    rng = np.random.default_rng(0)
    for model in ("dcgan", "vae"):
        for up_i, up in enumerate(("transpose", "nearest")):
            for workers in (1, 2):
                for seed in (0, 1):
                    tid = f"{model}-{up}-w{workers}-s{seed}"
                    directory = trial_dir(root, "syn", tid)
                    (directory / "samples").mkdir(parents=True, exist_ok=True)
                    rows = []
                    for epoch in (1, 2):
                        png = f"samples/epoch_{epoch:04d}.png"
                        if with_pngs:
                            pixels = rng.integers(0, 255, (40, 40), dtype=np.uint8)
                            Image.fromarray(pixels).save(directory / png)
                        rows.append({
                            schema.SCHEMA_VERSION_COL: schema.SCHEMA_VERSION,
                            schema.SWEEP: "syn", schema.TRIAL_ID: tid, schema.TRIAL_INDEX: 0,
                            schema.DATASET: "mnist", schema.MODEL: model,
                            schema.UPSAMPLING: up, schema.LATENT_DIM: 8, schema.EPOCHS: 2,
                            schema.EPOCH: epoch, schema.SEED: seed, schema.BATCH_SIZE: 32,
                            schema.WORKERS: workers, schema.STATUS: "ok",
                            schema.IMAGES_PER_SEC: 100.0 * workers * 0.9 / (1 + up_i)
                            + rng.normal(0, 2),
                            schema.FD_DOMAIN: 30.0 / epoch + 3 * up_i + rng.normal(0, 0.5),
                            schema.PRECISION_DOMAIN: 0.5 + rng.normal(0, 0.05),
                            schema.SAMPLES_PNG: png,
                            schema.TIMESTAMP: "2026-01-01T00:00:00+00:00"})
                    write_rows(directory / RESULT_FILE, rows)
    return root / "syn"


def test_report_with_metrics_scaling_and_pareto(tmp_path):
    sweep = synthetic_results(tmp_path / "results")
    out = tmp_path / "report"
    paths = write_report([sweep], out, ["md", "html", "latex"])
    assert [p.name for p in paths] == ["report.md", "report.html", "report.tex"]
    md = (out / "report.md").read_text()
    for heading in ("## Throughput", "## Sample quality", "## Upsampling effect",
                    "## Scaling", "## Quality against throughput", "## Samples"):
        assert heading in md
    assert "`fd_domain` at the final epoch (lower is better)" in md
    assert "Pareto front of `fd_domain`" in md
    assert "No data for: `fid_inception`" in md
    assert "needs at least two worker counts" not in md
    figures = {p.name for p in (out / "figures").glob("*.png")}
    assert {"throughput.png", "epochs_fd_domain.png", "scaling.png", "pareto_mnist.png",
            "samples_00.png", "samples_01.png"} <= figures  # a mosaic per worker count
    assert_markdown_images_exist(out)
    tex = (out / "report.tex").read_text()
    assert r"\toprule" in tex and r"\bottomrule" in tex and r"fd\_domain" in tex
    assert r"\includegraphics" in tex


def test_sample_mosaic_marks_missing_pngs(tmp_path):
    sweep = synthetic_results(tmp_path / "results", with_pngs=False)
    df = analysis.load_results(sweep)
    df = df[df[schema.WORKERS] == 1]
    path = plots.plot_sample_mosaic(df, tmp_path / "mosaic.png")
    with Image.open(path) as im:
        assert im.width > 200 and im.height > 200
    with pytest.raises(plots.NoDataError):
        plots.plot_sample_mosaic(df.iloc[0:0], tmp_path / "none.png")


def test_report_of_empty_and_corrupt_results_says_what_is_missing(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    write_report([empty], tmp_path / "r1")
    assert "No result rows were found" in (tmp_path / "r1" / "report.md").read_text()

    sweep = synthetic_results(tmp_path / "results", with_pngs=False)
    bad = next(sweep.rglob(RESULT_FILE))
    bad.write_bytes(b"not parquet")
    with pytest.warns(analysis.ResultsWarning, match=re.escape(str(bad))):
        write_report([sweep], tmp_path / "r2")
    md = (tmp_path / "r2" / "report.md").read_text()
    assert "Skipped while loading" in md and str(bad) in md

    # only a failed and a partial trial: nothing reached its final epoch
    failed = trial_dir(tmp_path / "failed", "syn", "t-failed")
    partial = trial_dir(tmp_path / "failed", "syn", "t-partial")
    base = {schema.SCHEMA_VERSION_COL: schema.SCHEMA_VERSION, schema.SWEEP: "syn",
            schema.DATASET: "mnist", schema.MODEL: "dcgan", schema.UPSAMPLING: "transpose",
            schema.SEED: 0, schema.WORKERS: 1, schema.EPOCHS: 2, schema.EPOCH: 1}
    for directory, extra in [(failed, {schema.STATUS: "failed", schema.ERROR: "ValueError: boom"}),
                             (partial, {schema.STATUS: "ok", schema.FD_DOMAIN: 3.0})]:
        directory.mkdir(parents=True)
        write_rows(directory / RESULT_FILE,
                   [{**base, schema.TRIAL_ID: directory.name, **extra}])
    write_report([tmp_path / "failed"], tmp_path / "r3", ["md", "html", "latex"])
    md = (tmp_path / "r3" / "report.md").read_text()
    assert "| failed | 1 |" in md and "| partial | 1 |" in md and "ValueError: boom" in md
    assert "exist only for epochs before the final one" in md
    assert "No throughput values" in md and "No sample grids at the final epoch" in md


# --- a real smoke sweep ------------------------------------------------------------------------


@pytest.fixture(scope="session")
def smoke_results(tmp_path_factory, data_dir) -> Path:
    """Run a tiny real sweep once (dcgan, vae x transpose, nearest; 2 epochs; ~30-60 s)."""
    root = tmp_path_factory.mktemp("analysis-smoke")
    sweep_file = root / "tiny.yaml"
    sweep_file.write_text(SMOKE_SWEEP)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    proc = subprocess.run([str(GENBENCH), "run", str(sweep_file), "--out", str(root / "results"),
                           "--quiet"], capture_output=True, text=True, env=env, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return root / "results" / "tiny"


@pytest.fixture(scope="session")
def smoke_report(smoke_results, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("analysis-report")
    write_report([smoke_results], out, ["md", "html", "latex"])
    return out


def assert_markdown_images_exist(out: Path) -> list[Path]:
    md = (out / "report.md").read_text()
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md)
    assert links, "no images in report.md"
    for link in links:
        assert not Path(link).is_absolute() and (out / link).is_file(), link
    return [out / link for link in links]


@pytest.mark.slow
def test_smoke_sweep_loads(smoke_results):
    df = analysis.load_results(smoke_results)
    assert len(df) == 8  # 4 trials x 2 milestones
    assert set(df[schema.STATUS]) == {"ok"}
    final = analysis.select_rows(df, "final")
    assert len(final) == 4
    for _, row in final.iterrows():
        assert analysis.sample_path(row).is_file()


@pytest.mark.slow
def test_report_from_smoke_sweep(smoke_report):
    out = smoke_report
    for name in ("report.md", "report.html", "report.tex"):
        assert (out / name).stat().st_size > 0
    images = assert_markdown_images_exist(out)
    assert out / "figures" / "samples_00.png" in images
    assert out / "figures" / "throughput.png" in images
    md = (out / "report.md").read_text()
    assert "| dcgan |" in md and "| vae |" in md
    assert "nearest" in md and "transpose" in md
    assert "a scaling table needs at least two worker counts" in md
    assert "## Trials" in md and "Aggregated report" not in md  # 4 trials: every one shown
    quality_tables = "at the final epoch" in md
    assert quality_tables or "No sample-quality metrics in these results" in md
    with Image.open(out / "figures" / "samples_00.png") as mosaic:
        assert mosaic.width > 400 and mosaic.height > 400  # 2 x 2 grids of 8 x 8 samples


@pytest.mark.slow
def test_html_report_is_self_contained(smoke_report):
    html_text = (smoke_report / "report.html").read_text()
    refs = re.findall(r"""(?:src|href)\s*=\s*["']([^"']*)["']""", html_text, flags=re.I)
    assert refs
    external = [r for r in refs if not (r.startswith("data:") or r.startswith("#"))]
    assert external == []
    assert "url(" not in html_text and "@import" not in html_text
    n_images = len(re.findall(r"<img\b", html_text))
    assert n_images == len(assert_markdown_images_exist(smoke_report))


# --- a big sweep: the aggregated report ------------------------------------------------------


@pytest.mark.slow
def test_big_sweep_report_aggregates(smoke_results, tmp_path):
    """60 trials replicated from the real smoke rows (new ids, seeds, latent sizes), with
    the threshold lowered to 16: grouped tables with t-intervals, samples of the best and
    worst configurations only, images as files, no per-trial section."""
    n = replicate_sweep(smoke_results, tmp_path / "results", seeds=5, latent_dims=[4, 8, 16])
    assert n == 60
    sweep, out = tmp_path / "results" / "big", tmp_path / "report"
    write_report([sweep], out, ["md", "html", "latex"], aggregate_above=16)
    md, html_text = (out / "report.md").read_text(), (out / "report.html").read_text()
    assert "Aggregated report: 60 trials is more than 16" in md and "## Trials" not in md
    # images linked, not inlined: the HTML stays small and every link is a file beside it
    assert "data:image" not in html_text and len(html_text.encode()) < 120_000
    srcs = re.findall(r'<img src="([^"]+)"', html_text)
    assert srcs and all((out / s).is_file() for s in srcs)
    assert any(s.endswith(".gif") for s in srcs)
    # per-trial rows only in the CSV; the page names only the trials whose samples it shows
    assert len(pd.read_csv(out / "tables" / "trials.csv")) == 60
    assert len(set(re.findall(r"\br\d{5}\b", html_text))) <= 2 * 3 * 2  # 2 models x 2k

    df = analysis.load_results(sweep)
    final = analysis.select_rows(df, "final")
    quality = analysis.available_metrics(df, analysis.QUALITY_METRICS, at_epoch="final")
    metric = quality[0] if quality else schema.IMAGES_PER_SEC
    keys = [schema.MODEL, schema.UPSAMPLING, schema.LATENT_DIM]
    stats_ = final.groupby(keys)[metric].agg(["mean", "std", "count"]).reset_index()
    assert len(pd.read_csv(out / "tables" / "configurations.csv")) == len(stats_) == 12
    lower = metric != schema.IMAGES_PER_SEC and analysis.tables.better_is_lower(metric)
    for model, rows in stats_.groupby(schema.MODEL):
        best = rows.sort_values("mean", ascending=lower).iloc[0]
        label = f"{model}/{best[schema.UPSAMPLING]} z={best[schema.LATENT_DIM]}"
        low, high = stats.t.interval(0.95, best["count"] - 1, loc=best["mean"],
                                     scale=best["std"] / np.sqrt(best["count"]))
        cell = f"{best['mean']:.4g} [{low:.4g}, {high:.4g}]"
        assert f"| {model} | best 1 | {label} | 5 | 5 | {cell} |" in md
        assert f"| {model} | worst 1 |" in md
    assert "95% t-interval across seeds" in md
    assert (out / "figures" / "extremes_dcgan.png").is_file()


# --- headless Chromium -----------------------------------------------------------------------


def chromium_executable() -> str:
    """Headless Chromium, installed by `make test` (its test-deps step), never by a test."""
    exe = shutil.which("chromium")
    if exe is None:
        pytest.fail("chromium is not installed: run `make test-deps` (make test does) or "
                    "`tools/system-deps.sh chromium`")
    return exe


PROBE = """
<img id="genbench-broken-control" src="data:image/png;base64,AAAA" alt="control">
<script>
window.addEventListener('load', function () {
  var found = Array.from(document.images).map(function (im) {
    return {id: im.id, width: im.naturalWidth, height: im.naturalHeight,
            complete: im.complete, src: im.getAttribute('src').slice(0, 22)};
  });
  var pre = document.createElement('pre');
  pre.id = 'genbench-image-check';
  pre.textContent = JSON.stringify(found);
  document.body.appendChild(pre);
});
</script>
"""


def images_in_chromium(html_file: Path, tmp_path: Path) -> list[dict]:
    """Load the page in headless Chromium; every <img>'s natural size after the load event."""
    probe = tmp_path / "probe.html"
    probe.write_text(html_file.read_text().replace("</body>", PROBE + "</body>"))
    profile = tempfile.mkdtemp(prefix="chromium-profile-", dir=tmp_path)
    cmd = [chromium_executable(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}",
           "--run-all-compositor-stages-before-draw", "--virtual-time-budget=10000",
           "--dump-dom", probe.as_uri()]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    found = re.search(r'<pre id="genbench-image-check">(.*?)</pre>', proc.stdout, flags=re.S)
    assert found, f"probe did not run (exit {proc.returncode}): {proc.stderr[-2000:]}"
    return json.loads(found.group(1).replace("&quot;", '"').replace("&amp;", "&"))


@pytest.mark.slow
def test_html_report_shows_every_image_in_chromium(smoke_report, tmp_path):
    images = images_in_chromium(smoke_report / "report.html", tmp_path)
    control = [im for im in images if im["id"] == "genbench-broken-control"]
    report_images = [im for im in images if im["id"] != "genbench-broken-control"]
    assert control and control[0]["width"] == 0  # the probe does see a broken image
    assert len(report_images) == len(assert_markdown_images_exist(smoke_report))
    broken = [im for im in report_images if not (im["complete"] and im["width"] > 0
                                                 and im["height"] > 0)]
    assert broken == [], broken
    # PNG figures, and each trial's animated GIF of its samples across milestones
    assert all(im["src"].startswith(("data:image/png", "data:image/gif")) for im in report_images)
    assert any(im["src"].startswith("data:image/gif") for im in report_images)


# --- CLI and the no-TensorFlow promise ---------------------------------------------------------


@pytest.mark.slow
def test_cli_report(smoke_results, tmp_path):
    out = tmp_path / "cli-report"
    proc = subprocess.run([str(GENBENCH), "report", str(smoke_results), "--out", str(out),
                           "--format", "md,html,latex"], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert {p.name for p in out.iterdir()} >= {"report.md", "report.html", "report.tex",
                                               "figures"}
    bad = tmp_path / "no-such-sweep"
    proc = subprocess.run([str(GENBENCH), "report", str(smoke_results), str(bad), "--out",
                           str(out)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2
    assert str(bad) in proc.stderr and "Traceback" not in proc.stderr
    proc = subprocess.run([str(GENBENCH), "report", str(smoke_results), "--out", str(out),
                           "--format", "md,pdf"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "--format" in proc.stderr
