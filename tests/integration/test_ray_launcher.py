"""`genbench run --launcher ray`: Tune trials on an embedded 2-CPU Ray, Horovod ranks as
Ray actors, retries, failures, and a killed sweep that resumes.

One Ray is started for the module (the launcher reuses a connection its caller made);
the killed-sweep test runs the CLI in a subprocess with its own embedded Ray. Test
models (flaky, broken) reach Ray's worker processes through tests/_ray_plugins and
Ray's worker_process_setup_hook.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import logging
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from analysis.load import load_results
from suite.cli.main import main
from suite.common.errors import GenbenchError, SpecError
from suite.store import schema

pytestmark = pytest.mark.skipif(importlib.util.find_spec("ray") is None,
                                reason="Ray Tune not installed: pip install 'genbench[ray]'")

PLUGINS = Path(__file__).resolve().parent / "_ray_plugins"
MARKERS_ENV = "GENBENCH_TEST_MARKERS"
TAG_ENV = "GENBENCH_TEST_RAY_TAG"  # inherited by every process Ray starts: finds strays
HAS_HOROVOD = importlib.util.find_spec("horovod") is not None

GRID = """
name: raygrid
dataset: mnist
grid:
  - {model: [dcgan, vae], upsampling: [transpose, nearest]}
  - {model: [dcgan], upsampling: [nearest], workers: [2]}
fixed: {latent_dim: 8, batch_size: 32, max_train_images: 256, epochs: 2}
eval: {n_samples: 200}
"""

FAILING = """
name: failing
dataset: mnist
grid: {model: [flaky, broken]}
fixed: {upsampling: nearest, latent_dim: 8, batch_size: 32, max_train_images: 256}
eval: {n_samples: 200}
"""

RESUME = """
name: resume
dataset: mnist
grid: {model: [vae], epochs: [1, 2, 3]}
fixed: {upsampling: nearest, latent_dim: 8, batch_size: 32, max_train_images: 1536}
eval: {n_samples: 200}
"""


def tagged_processes(tag: str) -> list[int]:
    """PIDs whose environment carries `tag` (every process a tagged Ray started)."""
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit() and int(proc.name) != os.getpid():
            with contextlib.suppress(OSError):
                if tag.encode() in (proc / "environ").read_bytes():
                    found.append(int(proc.name))
    return found


def wait_until_gone(tag: str, timeout: float = 20) -> list[int]:
    deadline = time.monotonic() + timeout
    while (left := tagged_processes(tag)) and time.monotonic() < deadline:
        time.sleep(0.5)
    return left


def run_cli(*args: str) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(list(args))
    return code, out.getvalue()


@pytest.fixture(scope="module")
def ray_cluster(tmp_path_factory):
    """One embedded Ray (2 CPUs) for the module, with the test models in every worker."""
    import ray

    markers = tmp_path_factory.mktemp("markers")
    tag = uuid.uuid4().hex
    saved = {k: os.environ.get(k) for k in ("PYTHONPATH", MARKERS_ENV, TAG_ENV)}
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PLUGINS), saved["PYTHONPATH"]]))
    os.environ[MARKERS_ENV] = str(markers)
    os.environ[TAG_ENV] = tag
    sys.path.insert(0, str(PLUGINS))
    import genbench_test_models

    genbench_test_models.register()  # here too: the sweep is validated in this process
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False,
             logging_level=logging.WARNING,
             runtime_env={"worker_process_setup_hook": "genbench_test_models.register"})
    try:
        yield tag
    finally:
        ray.shutdown()
        genbench_test_models.unregister()
        sys.path.remove(str(PLUGINS))
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        left = wait_until_gone(tag)
        for pid in left:  # ours (tagged): do not leave them to other tests
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        assert not left, f"Ray processes survived ray.shutdown(): {left}"


def write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text))
    return path


# --- launcher pieces that need no Ray ---------------------------------------------------


def test_resource_layout():
    from suite.launchers.ray_tune import placement_bundles

    assert placement_bundles(1, 1.0, 0.0) == [{"CPU": 1.0}]
    # The trainable of a Horovod trial only waits: an empty head bundle, so that
    # N workers need exactly N x C CPUs (2 workers fit a 2-CPU machine).
    assert placement_bundles(2, 1.0, 0.0) == [{}, {"CPU": 1.0}, {"CPU": 1.0}]
    gpu_bundle = {"CPU": 4.0, "GPU": 1.0}
    assert placement_bundles(2, 4.0, 1.0) == [{}, gpu_bundle, gpu_bundle]


def test_options_are_checked():
    from suite.launchers import LAUNCHERS

    with pytest.raises(SpecError, match="max_concurrent"):
        LAUNCHERS.get("ray")(max_concurrent=0)
    with pytest.raises(SpecError, match="experiment_trials"):
        LAUNCHERS.get("ray")(experiment_trials=0)
    with pytest.raises(SpecError, match="valid options: address"):
        LAUNCHERS.get("ray")(timeline=True)
    with pytest.raises(SpecError, match="dashboard"):
        LAUNCHERS.get("ray")(address="auto", dashboard=True)


def test_ray_flag_rejected_by_local_launcher(tmp_path, capsys):
    sweep = write(tmp_path / "s.yaml", GRID)
    assert main(["run", str(sweep), "--out", str(tmp_path), "--address", "auto"]) == 2
    err = capsys.readouterr().err
    assert "--launcher local: address: unknown launcher option" in err and "timeline" in err


def test_missing_ray_names_the_extra(monkeypatch):
    from suite.launchers.ray_tune import require_ray

    monkeypatch.setitem(sys.modules, "ray.tune", None)  # as if `ray[tune]` were absent
    with pytest.raises(GenbenchError, match=r"pip install 'genbench\[ray\]'"):
        require_ray()


# --- sweeps on Ray -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def grid_run(ray_cluster, tmp_path_factory):
    if not HAS_HOROVOD:
        pytest.skip("Horovod not installed: run tools/install-horovod.sh .venv/bin/python")
    tmp = tmp_path_factory.mktemp("grid")
    sweep = write(tmp / "grid.yaml", GRID)
    started = time.monotonic()
    # 5 trials as 3 consecutive Tune experiments (2 + 2 + 1): what bounds the driver's
    # memory in a sweep of thousands runs here too.
    code, stdout = run_cli("run", str(sweep), "--out", str(tmp / "ray"), "--launcher", "ray",
                           "--experiment-trials", "2", "--quiet")
    print(f"ray grid sweep: {time.monotonic() - started:.1f} s")
    local_code, _ = run_cli("run", str(sweep), "--out", str(tmp / "local"), "--trial-index", "0",
                            "--quiet")
    rerun_code, _ = run_cli("run", str(sweep), "--out", str(tmp / "ray"), "--launcher", "ray",
                            "--quiet")
    return tmp, code, stdout, local_code, rerun_code


@pytest.mark.slow
def test_grid_with_horovod_trial_completes(grid_run):
    tmp, code, stdout, _, _ = grid_run
    assert code == 0
    df = load_results(tmp / "ray" / "raygrid", deduplicate=False)
    assert len(df) == 5  # 5 trials x 1 milestone: rank 0 alone wrote the 2-worker trial
    assert set(df[schema.STATUS]) == {schema.STATUS_OK}
    assert all(t in stdout for t in df[schema.TRIAL_ID])  # the CLI's final table
    two = df[df[schema.WORKERS] == 2].iloc[0]
    assert two[schema.GLOBAL_BATCH_SIZE] == 64
    # 2 epochs of 256 images in global batches of 64: only true if 2 ranks shared the work.
    assert two[schema.STEPS] == 2 * (256 // 64)
    one = df[df[schema.WORKERS] == 1]
    assert (one[schema.STEPS] == 2 * (256 // 32)).all()


@pytest.mark.slow
def test_epoch_losses_reported_to_tune(grid_run):
    import pandas as pd

    tmp = grid_run[0]
    experiments = sorted((tmp / "ray" / "raygrid" / "ray").glob("tune-*"))
    # 3 experiments of at most 2 trials; the re-run started none: all were done
    assert [e.name[-4:] for e in experiments] == ["-000", "-001", "-002"]
    assert [len(list(e.glob("*/progress.csv"))) for e in experiments] == [2, 2, 1]
    progress = sorted(p for e in experiments for p in e.glob("*/progress.csv"))
    assert len(progress) == 5
    for path in progress:
        frame = pd.read_csv(path)
        assert frame["epoch"].tolist() == [1, 2], path
        loss = "losses/loss_g" if "losses/loss_g" in frame else "losses/elbo"
        assert frame[loss].notna().all(), path


@pytest.mark.slow
def test_tune_trial_state_holds_no_other_trial(grid_run):
    """Tune keeps each trial's saved state in the driver and rewrites all of them at every
    experiment checkpoint: a state that carried the sweep's trials (a name creator closing
    over them) made the driver grow by 0.6 MB per trial at 1,000 trials."""
    import json

    tmp = grid_run[0]
    states = [json.loads(state)
              for path in (tmp / "ray" / "raygrid" / "ray").glob("tune-*/experiment_state-*.json")
              for state, _ in json.loads(path.read_text())["trial_data"]]
    names = [s["relative_logdir"] for s in states]
    assert len(names) == 5 and all(re.fullmatch(r"\d{4}-[0-9a-f]{12}", n) for n in names)
    for state, name in zip(states, names, strict=True):
        text = json.dumps(state)
        for other in set(names) - {name}:
            trial_id = other.split("-", 1)[1]
            assert trial_id not in text and trial_id.encode().hex() not in text, name


@pytest.mark.slow
def test_rows_match_a_local_run(grid_run):
    tmp, _, _, local_code, _ = grid_run
    assert local_code == 0
    local_files = list((tmp / "local" / "raygrid" / "trials").glob("*/result.parquet"))
    assert len(local_files) == 1
    ray_file = tmp / "ray" / "raygrid" / "trials" / local_files[0].parent.name / "result.parquet"
    assert pq.read_schema(ray_file) == pq.read_schema(local_files[0])
    local, ray = pq.read_table(local_files[0]).to_pandas(), pq.read_table(ray_file).to_pandas()
    assert len(local) == len(ray) == 1
    assert list(ray.columns) == list(local.columns)
    assert ray.dtypes.to_dict() == local.dtypes.to_dict()
    filled = [c for c in local.columns if local[c].notna().all()]
    assert [c for c in ray.columns if ray[c].notna().all()] == filled
    assert ray[schema.CONFIG_JSON].iloc[0] == local[schema.CONFIG_JSON].iloc[0]


@pytest.mark.slow
def test_rerun_skips_finished_trials(grid_run):
    tmp, _, _, _, rerun_code = grid_run
    assert rerun_code == 0
    df = load_results(tmp / "ray" / "raygrid", deduplicate=False)
    assert len(df) == 5 and df[schema.TRIAL_ID].is_unique


@pytest.fixture(scope="module")
def failing_run(ray_cluster, tmp_path_factory):
    from genbench_test_models import attempts

    tmp = tmp_path_factory.mktemp("failing")
    sweep = write(tmp / "failing.yaml", FAILING)
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr):
        code, _ = run_cli("run", str(sweep), "--out", str(tmp), "--launcher", "ray", "--quiet",
                          "--max-failures", "1")
    df = load_results(tmp / "failing", deduplicate=False).set_index(schema.MODEL)
    return tmp, code, stderr.getvalue(), df, {m: attempts(m) for m in ("flaky", "broken")}


@pytest.mark.slow
def test_trial_failing_once_succeeds_on_retry(failing_run):
    _, _, _, df, attempts = failing_run
    assert attempts["flaky"] == 2  # Tune started it again after the first attempt raised
    flaky = df.loc[["flaky"]]
    assert flaky[schema.STATUS].tolist() == [schema.STATUS_OK]  # the failed row is gone


@pytest.mark.slow
def test_always_failing_trial_is_recorded_failed(failing_run):
    tmp, code, stderr, df, attempts = failing_run
    assert attempts["broken"] == 2  # the first attempt and max_failures=1 retry
    broken = df.loc[["broken"]]
    assert broken[schema.STATUS].tolist() == [schema.STATUS_FAILED]  # one row, the last
    assert "every attempt fails" in broken[schema.ERROR].iloc[0]
    error_txt = tmp / "failing" / "trials" / broken[schema.TRIAL_ID].iloc[0] / "error.txt"
    assert "Traceback" in error_txt.read_text()
    assert code == 1 and "1 of 2 trials failed" in stderr  # and the flaky trial finished


@pytest.mark.slow
def test_killed_sweep_resumes_without_duplicates(ray_cluster, tmp_path):
    sweep = write(tmp_path / "resume.yaml", RESUME)
    out = tmp_path / "out"
    tag = uuid.uuid4().hex
    env = {**os.environ, TAG_ENV: tag}
    log = tmp_path / "killed.log"
    with open(log, "wb") as f:
        proc = subprocess.Popen([sys.executable, "-m", "suite.cli.main", "run", str(sweep), "--out",
                                 str(out), "--launcher", "ray", "--quiet"], env=env,
                                stdout=f, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 300
    checkpoints: list[Path] = []
    while not checkpoints and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.2)
        checkpoints = list(out.glob("resume/trials/*/checkpoint.npz"))
    assert checkpoints, f"no checkpoint appeared: {log.read_text()[-3000:]}"
    os.killpg(proc.pid, signal.SIGKILL)  # the driver, as a preempted job would be
    proc.wait()
    left = wait_until_gone(tag)
    for pid in left:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    assert not left, "processes of the killed sweep's Ray survived it"
    assert len(load_results(out / "resume", deduplicate=False)) < 3

    code, _ = run_cli("run", str(sweep), "--out", str(out), "--launcher", "ray", "--quiet")
    assert code == 0
    df = load_results(out / "resume", deduplicate=False).sort_values(schema.EPOCH)
    assert df[schema.EPOCH].tolist() == [1, 2, 3]  # each milestone exactly once
    assert set(df[schema.STATUS]) == {schema.STATUS_OK}
    final = df.iloc[-1]
    assert final[schema.STEPS] == 3 * (1536 // 32)
    assert final[schema.WARMUP_STEPS] == 4  # two processes, each traced its step again
