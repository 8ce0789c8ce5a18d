"""Store and analysis speed at cluster size: load_results, show, status, report on 10,000 trials.

    .venv/bin/python benchmarks/bench_store.py [--source results/demo]

Without `--source` it takes `results/demo` (what `make run` writes) or
`results/smoke` if one holds finished trials, and otherwise runs the built-in
`smoke` sweep once into `<--work>-source` (about 2 minutes on 2 cores), so `make
bench` works on a fresh clone.

Builds a synthetic sweep directory of `--trials` trials from the REAL trial
directories of `--source` (any finished sweep): trial i is a copy of source
trial i mod n under a new trial id, index and seed. Those three are rewritten
consistently in result.parquet (trial_id, trial_index, seed, config_json) and
config.json; every other value is the real row's. The rest of a trial's files
(samples, checkpoint, TensorBoard events) are hard links, so 10,000 trials cost
~40 kB of parquet each and no copies. The directory is kept for the next run
(`--work`, rebuilt when --source or --trials differ).

Then times, each in a fresh process as a user would run it: `genbench status` and
`analysis.load_results` without the sweep's row cache (every file decoded: the
first read after trials changed), then with it `analysis.load_results`, `genbench
show`, `genbench status` and `genbench report`, and prints the load average (the
machine is shared: say it with the figures). Targets on 2 cores, for the reads
with the cache: load_results and status 10 s each, show 5 s, report 60 s.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from suite.store import schema  # noqa: E402
from suite.store.results import RESULT_FILE, TRIALS_DIR, read_parquet_once  # noqa: E402
from suite.store.row_cache import CACHE_FILE  # noqa: E402

CONFIG_FILE = "config.json"
MARKER = "bench_store.json"
TARGETS_S = {"load_results": 10.0, "show": 5.0, "status": 10.0, "report": 60.0}


def new_trial_id(i: int) -> str:
    return hashlib.sha256(f"bench-store-{i}".encode()).hexdigest()[:12]


DEFAULT_SOURCES = (Path("results/demo"), Path("results/smoke"))


def has_results(sweep_dir: Path) -> bool:
    """Whether a sweep directory holds at least one finished trial's result file."""
    return any((sweep_dir / TRIALS_DIR).glob(f"*/{RESULT_FILE}"))


def find_source(work: Path) -> Path:
    """A finished sweep to replicate: `make run`'s, or a smoke sweep run here once."""
    for candidate in DEFAULT_SOURCES:
        if has_results(candidate):
            return candidate
    out = work.with_name(work.name + "-source")
    if not has_results(out / "smoke"):
        print(f"bench_store: no finished sweep in {' or '.join(map(str, DEFAULT_SOURCES))}; "
              f"running the smoke sweep into {out} once", flush=True)
        genbench = str(Path(sys.executable).with_name("genbench"))
        subprocess.run([genbench, "run", "smoke", "--out", str(out), "--quiet"], check=True)
    return out / "smoke"


def build_sweep(source: Path, work: Path, trials: int) -> Path:
    """`work`/<sweep name>/trials/<id>/ for `trials` copies of the source's trials."""
    sources = sorted(p for p in (source / TRIALS_DIR).iterdir() if (p / RESULT_FILE).is_file())
    if not sources:
        sys.exit(f"bench_store: no {RESULT_FILE} under {source}/{TRIALS_DIR}; run a sweep "
                 "first (see the module docstring)")
    tables = [read_parquet_once(p / RESULT_FILE) for p in sources]
    sweep = tables[0][schema.SWEEP][0].as_py()
    out = work / sweep
    stamp = {"source": str(source.resolve()), "trials": trials}
    marker = work / MARKER
    if marker.is_file() and json.loads(marker.read_text()) == stamp:
        return out
    if work.exists():
        subprocess.run(["rm", "-rf", str(work)], check=True)
    (out / TRIALS_DIR).mkdir(parents=True)
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda i: copy_trial(sources[i % len(sources)], tables[i % len(sources)],
                                           out, i, len(sources)), range(trials)))
    marker.write_text(json.dumps(stamp))
    return out


def copy_trial(src: Path, table: pa.Table, out: Path, i: int, n_sources: int) -> None:
    trial_id, seed = new_trial_id(i), 1000 + i // n_sources
    dst = out / TRIALS_DIR / trial_id
    dst.mkdir()
    for path in src.rglob("*"):
        target = dst / path.relative_to(src)
        if path.is_dir():
            target.mkdir(exist_ok=True)
        elif path.name not in (RESULT_FILE, CONFIG_FILE):
            link_file(path, target)
    ids = {schema.TRIAL_ID: trial_id, schema.TRIAL_INDEX: i, schema.SEED: seed}
    for column, value in ids.items():
        pos = table.schema.get_field_index(column)
        table = table.set_column(pos, column, pa.array([value] * table.num_rows,
                                                       table.schema.field(column).type))
    configs = [_rewrite_config(c, trial_id, i, seed) for c in table[schema.CONFIG_JSON].to_pylist()]
    pos = table.schema.get_field_index(schema.CONFIG_JSON)
    table = table.set_column(pos, schema.CONFIG_JSON, pa.array(configs, pa.string()))
    pq.write_table(table, dst / RESULT_FILE)
    if (src / CONFIG_FILE).is_file():
        config = json.loads((src / CONFIG_FILE).read_text())
        (dst / CONFIG_FILE).write_text(json.dumps(_with_ids(config, trial_id, i, seed),
                                                  indent=2, sort_keys=True) + "\n")


def link_file(path: Path, target: Path) -> None:
    """A hard link, or a symbolic one across filesystems (never a copy: 10,000 checkpoints)."""
    try:
        os.link(path, target)
    except OSError:
        os.symlink(path.resolve(), target)


def _rewrite_config(text: str | None, trial_id: str, index: int, seed: int) -> str | None:
    if not text:
        return text
    return json.dumps(_with_ids(json.loads(text), trial_id, index, seed), sort_keys=True)


def _with_ids(config: dict, trial_id: str, index: int, seed: int) -> dict:
    config = dict(config)
    config["index"], config["seed"] = index, seed
    if "trial_id" in config:
        config["trial_id"] = trial_id
    return config


def timed(label: str, argv: list[str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        print(f"{label}: exit {done.returncode}: {done.stderr.strip()[-400:]}", file=sys.stderr)
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=None,
                        help="a finished sweep directory whose trials are replicated "
                             "(default: results/demo or results/smoke, else a smoke run)")
    parser.add_argument("--trials", type=int, default=10_000)
    parser.add_argument("--work", type=Path, default=Path("/tmp/genbench-bench-store"),
                        help="where the synthetic sweep is built (kept for the next run)")
    parser.add_argument("--skip", default="", help="comma-separated steps not to time")
    args = parser.parse_args(argv)
    source = args.source or find_source(args.work)
    started = time.perf_counter()
    sweep = build_sweep(source, args.work, args.trials)
    print(f"sweep: {sweep} ({args.trials:,} trials from {source}; built or reused in "
          f"{time.perf_counter() - started:.1f} s)")
    python, genbench = sys.executable, str(Path(sys.executable).with_name("genbench"))
    load = [python, "-c", "import sys, analysis; print(len(analysis.load_results(sys.argv[1])))",
            str(sweep)]
    # (step, command, row cache removed first). Without the cache every result file is
    # decoded (a few ms each): the first read after the trials changed, no target;
    # `genbench run` pays it when its trials are done, and every later read is warm.
    steps = [
        ("status, no row cache", [genbench, "status", str(sweep)], True),
        ("load_results, no row cache", load, True),
        ("load_results", load, False),
        ("show", [genbench, "show", str(sweep)], False),
        ("status", [genbench, "status", str(sweep)], False),
        ("report", [genbench, "report", str(sweep), "--out", str(args.work / "report")], False),
    ]
    skip = set(args.skip.split(","))
    for name, command, cold in steps:
        if name in skip or name.split(",")[0] in skip:
            continue
        if cold:
            (sweep / CACHE_FILE).unlink(missing_ok=True)
        load_avg = os.getloadavg()[0]
        seconds = timed(name, command)
        target = TARGETS_S.get(name)
        verdict = ("no target" if target is None else
                   f"target {target:.0f} s: {'ok' if seconds <= target else 'OVER'}")
        print(f"{name:<27} {seconds:7.1f} s   ({verdict}; load average before "
              f"{load_avg:.1f}, after {os.getloadavg()[0]:.1f})", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
