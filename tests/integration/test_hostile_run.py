"""`genbench run` against damaged store files, bad or full disks, and a second run of the
same sweep: one clear message or a clean recovery, never a traceback or lost rows."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from analysis.load import load_results
from suite.store import schema
from suite.store.trial_store import TrialStore

REPO = Path(__file__).resolve().parents[2]
SWEEP = """\
name: hostile
dataset: mnist
fixed: {{model: dcgan, batch_size: 32, max_train_images: 256, latent_dim: 8}}
grid: {{epochs: [1, {epochs}], upsampling: {upsampling}}}
eval: {{n_samples: 32, backbones: [domain]}}
"""


def write_sweep(directory: Path, epochs: int = 2, upsampling: str = "[nearest]") -> Path:
    path = directory / "hostile.yaml"
    path.write_text(SWEEP.format(epochs=epochs, upsampling=upsampling))
    return path


def genbench(*args: str, timeout: float = 600, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "suite.cli.main", *map(str, args)], cwd=REPO,
                          capture_output=True, text=True, timeout=timeout, **kwargs)


def trial_dirs(out: Path) -> list[Path]:
    return sorted((out / "hostile" / "trials").iterdir())


def assert_clean_error(proc: subprocess.CompletedProcess, *needles: str) -> None:
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    for needle in needles:
        assert needle in proc.stderr, proc.stderr


@pytest.fixture(scope="module")
def finished(tmp_path_factory, data_dir, eval_cache) -> tuple[Path, Path]:
    """A finished two-trial sweep, copied by the tests that damage it."""
    base = tmp_path_factory.mktemp("hostile")
    sweep = write_sweep(base, upsampling="[nearest, transpose]")
    proc = genbench("run", sweep, "--out", base / "out", "--data-dir", data_dir, "--quiet")
    assert proc.returncode == 0, proc.stderr
    return sweep, base / "out"


def copy_out(src: Path, dst: Path) -> Path:
    import shutil

    shutil.copytree(src, dst)
    return dst


# --- store files ---------------------------------------------------------------------------


@pytest.mark.parametrize("damage", ["truncated", "garbage"])
def test_damaged_checkpoint_is_set_aside_and_the_trial_retrained(finished, tmp_path, data_dir,
                                                                 damage):
    sweep, src = finished
    out = copy_out(src, tmp_path / "out")
    trial = trial_dirs(out)[0]
    checkpoint = trial / "checkpoint.npz"
    data = checkpoint.read_bytes()
    checkpoint.write_bytes(data[: len(data) // 3] if damage == "truncated"
                           else os.urandom(4096))
    store = TrialStore(out, "hostile", trial.name)
    store.write_rows([r for r in store.rows() if r[schema.EPOCH] == 1])  # epoch 2 to redo
    proc = genbench("run", sweep, "--out", out, "--data-dir", data_dir, "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert str(checkpoint) in proc.stderr and "set aside" in proc.stderr
    assert list(trial.glob("checkpoint.npz.corrupt-*"))
    df = load_results(out / "hostile", deduplicate=False)
    mine = df[df[schema.TRIAL_ID] == trial.name]
    assert sorted(mine[schema.EPOCH]) == [1, 2] and set(mine[schema.STATUS]) == {"ok"}


@pytest.mark.parametrize("garbage", [b"this is not parquet", b"PAR1\x00\x01"])
def test_garbage_result_file_neither_crashes_show_status_nor_run(finished, tmp_path, data_dir,
                                                                 garbage):
    sweep, src = finished
    out = copy_out(src, tmp_path / "out")
    damaged, intact = trial_dirs(out)
    (damaged / "result.parquet").write_bytes(garbage)
    show = genbench("show", out / "hostile")
    assert show.returncode == 0 and "Traceback" not in show.stderr, show.stderr
    assert str(damaged / "result.parquet") in show.stderr.replace("\n", "")
    status = genbench("status", out / "hostile")
    assert status.returncode == 0 and "Traceback" not in status.stderr, status.stderr
    assert "corrupt" in status.stdout
    run = genbench("run", sweep, "--out", out, "--data-dir", data_dir, "--quiet")
    assert run.returncode == 0, run.stderr
    assert "skipped" not in run.stderr.split(damaged.name)[1].splitlines()[0]
    df = load_results(out / "hostile", deduplicate=False)
    assert len(df) == 4 and set(df[schema.STATUS]) == {"ok"}  # both trials, both milestones
    assert list(damaged.glob("result.parquet.corrupt-*"))


# --- disks ------------------------------------------------------------------------------------


@contextlib.contextmanager
def tmpfs(path: Path, options: str):
    path.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {mounted.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


@pytest.mark.parametrize("kind", ["read-only mount", "a file"])
def test_unwritable_out_is_refused_before_any_work(tmp_path, data_dir, kind):
    sweep = write_sweep(tmp_path)
    if kind == "a file":
        out = tmp_path / "results.txt"
        out.write_text("not a directory")
        proc = genbench("run", sweep, "--out", out, "--data-dir", data_dir, "--quiet",
                        timeout=120)
        assert_clean_error(proc, "--out", "fix:")
        assert out.read_text() == "not a directory"
        return
    with tmpfs(tmp_path / "ro", "ro,size=1m") as out:
        started = time.monotonic()
        proc = genbench("run", sweep, "--out", out, "--data-dir", data_dir, "--quiet",
                        timeout=120)
        assert_clean_error(proc, "--out", "fix:")
        assert time.monotonic() - started < 60  # before datasets load or backbones train


def test_full_disk_stops_the_sweep_with_one_message_and_no_litter(tmp_path, data_dir,
                                                                  eval_cache):
    sweep = write_sweep(tmp_path)
    with tmpfs(tmp_path / "small", "size=3m") as out:
        proc = genbench("run", sweep, "--out", out, "--data-dir", data_dir, "--quiet")
        assert_clean_error(proc, "no space left", "fix:")
        assert proc.stderr.count("Error") <= 1
        leftovers = [p for p in out.rglob("*") if ".tmp" in p.name]
        assert leftovers == []
        error_files = list(out.rglob("error.txt"))
        assert all(p.read_text() for p in error_files)


# --- two runs of one sweep ---------------------------------------------------------------------


@pytest.mark.slow
def test_second_run_skips_the_trial_the_first_is_training(tmp_path, data_dir, eval_cache):
    sweep = write_sweep(tmp_path, epochs=6)
    out = tmp_path / "out"
    first = subprocess.Popen([sys.executable, "-m", "suite.cli.main", "run", str(sweep), "--out",
                              str(out), "--data-dir", str(data_dir), "--quiet"], cwd=REPO,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 300
        while not list(out.glob("hostile/trials/*/lease.json")):
            assert first.poll() is None and time.monotonic() < deadline, "first run ended early"
            time.sleep(0.2)
        second = genbench("run", sweep, "--out", out, "--data-dir", data_dir, "--quiet")
        assert second.returncode == 0, second.stderr
        assert "busy" in second.stderr and "already being trained by pid" in second.stderr
        _, err = first.communicate(timeout=600)
        assert first.returncode == 0, err
    finally:
        if first.poll() is None:
            first.send_signal(signal.SIGKILL)
    df = load_results(out / "hostile", deduplicate=False)
    assert sorted(df[schema.EPOCH]) == [1, 6] and set(df[schema.STATUS]) == {"ok"}
    assert df[schema.WARMUP_STEPS].max() == 2  # one process trained it
    assert not list(out.glob("hostile/trials/*/lease.json"))


def test_lease_of_a_killed_run_does_not_block_the_next(tmp_path, data_dir, eval_cache):
    sweep = write_sweep(tmp_path, epochs=3)
    out = tmp_path / "out"
    first = subprocess.Popen([sys.executable, "-m", "suite.cli.main", "run", str(sweep), "--out",
                              str(out), "--data-dir", str(data_dir), "--quiet"], cwd=REPO,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while not list(out.glob("hostile/trials/*/lease.json")):
        assert first.poll() is None and time.monotonic() < deadline
        time.sleep(0.2)
    first.kill()
    first.wait()
    assert list(out.glob("hostile/trials/*/lease.json"))  # the dead holder's lease is left
    proc = genbench("run", sweep, "--out", out, "--data-dir", data_dir, "--quiet")
    assert proc.returncode == 0 and "busy" not in proc.stderr, proc.stderr
    df = load_results(out / "hostile")
    assert sorted(df[schema.EPOCH]) == [1, 3] and set(df[schema.STATUS]) == {"ok"}
