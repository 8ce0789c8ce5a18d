"""genbench on a real one-node Slurm cluster (slurm/local-cluster.sh, started here).

submitit job arrays through `genbench submit`, a workers=2 trial as two Slurm
tasks (Horovod ranks that rendezvous without horovodrun), `scontrol requeue`
of a running trial, and the plain sbatch template. All jobs are submitted at
once by one fixture, the requeue trial first, so that Slurm keeps both cores
busy; each test then waits for its own jobs.

The Slurm tests skip only when the cluster cannot start (e.g. not root), and
fail instead under CI (CI=true), which must run them.
"""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from status_table import rows_of_jobs

from suite.store import schema
from suite.store.results import RESULT_FILE, read_rows, trial_dir
from suite.sweep.loader import load_sweep

REPO = Path(__file__).resolve().parents[2]
CLUSTER_SCRIPT = REPO / "slurm" / "local-cluster.sh"
SBATCH_TEMPLATE = REPO / "slurm" / "sweep.sbatch"
BIN = Path(sys.executable).parent
GENBENCH = str(BIN / "genbench")
RANK_LINE = re.compile(r"rank (\d+)/(\d+): trial (\w+) (\w+) weights=(\w+)")
JOB_TIMEOUT_S = 420

COMMON = """
dataset: mnist
fixed:
  model: dcgan
  upsampling: nearest
  latent_dim: 8
  batch_size: 32
  {extra}
eval: {{n_samples: 200}}
"""
SWEEPS = {
    # Long enough (8 epochs of 1536 images) to be stopped twice while running.
    "requeue": "name: slurm-requeue\ngrid: {epochs: [1, 2, 3, 4, 5, 6, 7, 8]}"
               + COMMON.format(extra="max_train_images: 1536"),
    "array": "name: slurm-array\ngrid: {seed: [0, 1, 2], epochs: [1, 2]}"
             + COMMON.format(extra="max_train_images: 256"),
    "ranks": "name: slurm-ranks\ngrid: {epochs: [1, 2]}"
             + COMMON.format(extra="max_train_images: 512\n  workers: 2"),
    # Trial 1 (workers: 2) is the one the template runs: srun ranks in place.
    "template": "name: slurm-template\ngrid: {workers: [1, 2], epochs: [1]}"
                + COMMON.format(extra="max_train_images: 256"),
}


# --- no cluster needed -----------------------------------------------------------------


def test_slurm_options_are_typed_and_checked():
    from suite.common.errors import SpecError
    from suite.launchers import LAUNCHERS
    from suite.launchers.slurm import node_layout

    launcher = LAUNCHERS.get("slurm")(partition="p", time_min=5)
    assert launcher.options.partition == "p"
    with pytest.raises(SpecError, match="valid options: partition"):
        LAUNCHERS.get("slurm")(partitions="p")
    assert node_layout(8, 4) == (2, 4)
    assert node_layout(2, None) == (1, 2)
    with pytest.raises(SpecError):
        node_layout(6, 4)


def test_submit_without_submitit_names_the_extra(monkeypatch, capsys):
    from suite.cli.main import main

    monkeypatch.setitem(sys.modules, "submitit", None)  # import submitit -> ImportError
    assert main(["submit", "smoke", "--partition", "debug"]) == 2
    err = capsys.readouterr().err
    assert "submitit" in err and "genbench[slurm]" in err


def test_run_in_a_step_of_the_wrong_size_is_refused(monkeypatch, capsys, write_sweep):
    from suite.cli.main import main

    sweep = write_sweep(SWEEPS["template"])
    monkeypatch.setenv("SLURM_STEP_NUM_TASKS", "2")
    assert main(["run", str(sweep), "--trial-index", "1"]) == 2
    err = capsys.readouterr().err
    assert "2 srun tasks" in err and "sweep.sbatch" in err


# --- against the real cluster ---------------------------------------------------------------


@dataclass
class Submission:
    sweep: Path
    out: Path  # results root
    job_ids: list[str]
    cwd: Path

    @property
    def sweep_dir(self) -> Path:
        return self.out / load_sweep(str(self.sweep)).name


def _genbench_submit(sweep: Path, out: Path, env: dict, data_dir: Path) -> list[str]:
    proc = subprocess.run([GENBENCH, "submit", str(sweep), "--partition", "debug", "--time", "15",
                           "--out", str(out), "--data-dir", str(data_dir)],
                          capture_output=True, text=True, env=env, timeout=300,
                          cwd=sweep.parent)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return [line.split("\t")[0] for line in proc.stdout.splitlines() if "\ttrial " in line]


@pytest.fixture(scope="module")
def submissions(slurm_env, tmp_path_factory, data_dir) -> dict[str, Submission]:
    subs: dict[str, Submission] = {}
    for key in ("requeue", "array", "ranks"):
        tmp = tmp_path_factory.mktemp(f"slurm-{key}")
        sweep = tmp / f"{key}.yaml"
        sweep.write_text(textwrap.dedent(SWEEPS[key]))
        subs[key] = Submission(sweep, tmp / "out", _genbench_submit(sweep, tmp / "out", slurm_env,
                                                                    data_dir), tmp)
    tmp = tmp_path_factory.mktemp("slurm-template")
    sweep = tmp / "template.yaml"
    sweep.write_text(textwrap.dedent(SWEEPS["template"]))
    proc = subprocess.run(["sbatch", "--parsable", "--array=1", "--ntasks=2", str(SBATCH_TEMPLATE),
                           str(sweep), "--out", str(tmp / "out"), "--data-dir", str(data_dir)],
                          capture_output=True, text=True, env=slurm_env, cwd=tmp, timeout=60)
    assert proc.returncode == 0, proc.stderr
    subs["template"] = Submission(sweep, tmp / "out", [proc.stdout.strip().split(";")[0]], tmp)
    yield subs
    everything = [j.split("_")[0] for s in subs.values() for j in s.job_ids]
    subprocess.run(["scancel", *everything], env=slurm_env, capture_output=True)


def _squeue(job_ids: list[str], env: dict, fields: str = "%i %T") -> dict[str, str]:
    """Queued (pending, running, ...) array tasks and jobs -> state (and more fields)."""
    base = sorted({j.split("_")[0] for j in job_ids})
    proc = subprocess.run(["squeue", "-h", "--array", "-o", fields, "-j", ",".join(base)],
                          capture_output=True, text=True, env=env)
    return dict(line.split(maxsplit=1) for line in proc.stdout.splitlines() if line.strip())


def _wait_for_jobs(sub: Submission, env: dict, release_held: bool = False) -> None:
    deadline = time.monotonic() + JOB_TIMEOUT_S
    while queued := _squeue(sub.job_ids, env):
        if time.monotonic() > deadline:
            logs = _logs(sub)
            pytest.fail(f"jobs still queued after {JOB_TIMEOUT_S}s: {queued}\n{logs[-3000:]}")
        if release_held:
            _release_held(sub.job_ids, env)
        time.sleep(1)


def _logs(sub: Submission) -> str:
    files = sorted((sub.sweep_dir / "slurm" / "logs").glob("*.out")) + sorted(
        sub.cwd.glob("slurm-genbench-*.out"))
    return "\n".join(f"== {f}\n{f.read_text(errors='replace')}" for f in files)


def _ok_epochs(sub: Submission, trial_id: str) -> list[int]:
    rows = read_rows(trial_dir(sub.out, load_sweep(str(sub.sweep)).name, trial_id) / RESULT_FILE)
    return [r[schema.EPOCH] for r in rows if r[schema.STATUS] == schema.STATUS_OK]


def _rank_digests(text: str, trial_id: str) -> dict[str, str]:
    return {m[1]: m[5] for m in RANK_LINE.finditer(text) if m[3] == trial_id and m[4] == "ok"}


def _release_held(job_ids: list[str], env: dict) -> dict[str, str]:
    """A requeued job waits ~2 minutes for its begin time: start it now. Returns the
    queued jobs' states."""
    queued = _squeue(job_ids, env, "%i %T %r")
    for job, state in queued.items():
        if state == "PENDING BeginTime":
            subprocess.run(["scontrol", "update", f"jobid={job}", "StartTime=now"], env=env,
                           capture_output=True)
    return queued


def _wait_for_row(sub: Submission, trial_id: str, wanted, env: dict) -> list[dict]:
    deadline = time.monotonic() + JOB_TIMEOUT_S
    path = trial_dir(sub.out, load_sweep(str(sub.sweep)).name, trial_id) / RESULT_FILE
    while True:
        rows = read_rows(path)
        if any(wanted(r) for r in rows):
            return rows
        assert time.monotonic() < deadline, _logs(sub)[-3000:]
        assert _release_held(sub.job_ids, env), f"job ended early\n{_logs(sub)[-3000:]}"
        time.sleep(0.3)


def test_requeued_trial_resumes_from_its_checkpoint(submissions, slurm_env):
    """`scontrol requeue` kills the running trial; later submitit's own preemption
    path (USR2 -> SlurmTrialTask.checkpoint -> requeue) stops it again. Each
    process resumes from the last epoch checkpoint, and adds 2 warm-up steps."""
    sub = submissions["requeue"]
    (job,) = sub.job_ids
    trial = load_sweep(str(sub.sweep)).trials[0]
    rows = _wait_for_row(sub, trial.trial_id, lambda r: True, slurm_env)  # epoch 1 is written
    assert max(r[schema.EPOCH] for r in rows) <= 3, f"too late to requeue: {len(rows)} rows"
    proc = subprocess.run(["scontrol", "requeue", job], capture_output=True, text=True,
                          env=slurm_env)
    assert proc.returncode == 0, proc.stderr

    rows = _wait_for_row(sub, trial.trial_id, lambda r: r[schema.WARMUP_STEPS] == 4, slurm_env)
    resumed_at = min(r[schema.EPOCH] for r in rows if r[schema.WARMUP_STEPS] == 4)
    assert 2 <= resumed_at <= trial.epochs - 2, f"resumed at epoch {resumed_at}"
    proc = subprocess.run(["scancel", "--signal=USR2", job], capture_output=True, text=True,
                          env=slurm_env)  # what Slurm sends before a time limit or preemption
    assert proc.returncode == 0, proc.stderr
    _wait_for_jobs(sub, slurm_env, release_held=True)

    rows = read_rows(trial_dir(sub.out, trial.sweep, trial.trial_id) / RESULT_FILE)
    logs = _logs(sub)
    assert [r[schema.EPOCH] for r in rows] == list(range(1, trial.epochs + 1)), logs[-3000:]
    assert {r[schema.STATUS] for r in rows} == {schema.STATUS_OK}
    assert rows[0][schema.WARMUP_STEPS] == 2
    # Warm-up is counted per process and carried by the checkpoint: every resumed process
    # adds its own (6 when both stops came after a checkpoint; 4 when the second stop hit
    # the resumed process before it finished an epoch, which a loaded machine can cause).
    assert rows[-1][schema.WARMUP_STEPS] >= 4, logs[-3000:]
    assert "Calling checkpoint method" in logs  # submitit called SlurmTrialTask.checkpoint
    # The clock carried over: every epoch's steps were counted exactly once.
    assert rows[-1][schema.STEPS] == trial.epochs * (1536 // 32)


def test_array_of_three_trials_writes_every_row(submissions, slurm_env):
    sub = submissions["array"]
    assert len(sub.job_ids) == 3 and len({j.split("_")[0] for j in sub.job_ids}) == 1, sub.job_ids
    _wait_for_jobs(sub, slurm_env)
    for trial in load_sweep(str(sub.sweep)).trials:
        assert _ok_epochs(sub, trial.trial_id) == [1, 2], _logs(sub)[-3000:]
    proc = subprocess.run([GENBENCH, "status", str(sub.sweep_dir)], capture_output=True,
                          text=True, env=slurm_env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    rows = rows_of_jobs(proc.stdout, sub.job_ids)
    assert len(rows) == 3 and all(row["state"] == "ok" for row in rows), proc.stdout


def test_two_worker_trial_runs_as_two_slurm_tasks(submissions, slurm_env):
    sub = submissions["ranks"]
    (job,) = sub.job_ids
    _wait_for_jobs(sub, slurm_env)
    trial = load_sweep(str(sub.sweep)).trials[0]
    assert _ok_epochs(sub, trial.trial_id) == [1, 2], _logs(sub)[-3000:]
    # submitit writes task t's stdout to <folder>/<job id>_<t>_log.out.
    logs = {t: (sub.sweep_dir / "slurm" / "logs" / f"{job}_{t}_log.out") for t in (0, 1)}
    digests = {**_rank_digests(logs[0].read_text(), trial.trial_id),
               **_rank_digests(logs[1].read_text(), trial.trial_id)}
    assert set(digests) == {"0", "1"}, _logs(sub)[-3000:]
    assert digests["0"] == digests["1"] != "-"
    rows = read_rows(trial_dir(sub.out, trial.sweep, trial.trial_id) / RESULT_FILE)
    assert {r[schema.WORKERS] for r in rows} == {2}
    assert rows[-1][schema.GLOBAL_BATCH_SIZE] == 64


def test_sbatch_template_runs_one_trial_with_srun_ranks(submissions, slurm_env):
    sub = submissions["template"]
    (job,) = sub.job_ids
    _wait_for_jobs(sub, slurm_env)
    trials = load_sweep(str(sub.sweep)).trials
    assert _ok_epochs(sub, trials[1].trial_id) == [1], _logs(sub)[-3000:]
    assert _ok_epochs(sub, trials[0].trial_id) == []  # array task 1 ran trial 1 only
    # The batch step's `genbench run` started the ranks as an srun step; they log there.
    output = (trial_dir(sub.out, trials[1].sweep, trials[1].trial_id) / "worker.log").read_text()
    digests = _rank_digests(output, trials[1].trial_id)
    assert set(digests) == {"0", "1"} and digests["0"] == digests["1"] != "-", output[-3000:]
