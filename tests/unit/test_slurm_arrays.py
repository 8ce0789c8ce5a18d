"""Job arrays within Slurm's limits: reading them, cutting chunks, sharing --array-parallelism
(pure maths and parsing; the real cluster is tests/integration/test_slurm_chunks.py)."""

from __future__ import annotations

import random

import pytest

from suite.launchers.slurm import SlurmSubmission
from suite.launchers.slurm_arrays import (
    ArrayLimits,
    parse_slurm_config,
    plan_chunks,
    share_parallelism,
)
from suite.launchers.slurm_jobs import SubmittedTrial, _scontrol_states

# An excerpt of `scontrol show config` from Slurm 22.05 (this machine's local cluster).
SCONTROL_CONFIG = """\
Configuration data as of 2026-12-02T18:27:11
AccountingStorageBackupHost = (null)
AuthInfo                = socket=/var/lib/genbench-slurm/munge/munge.socket.2
MaxArraySize            = 1001
MaxDBDMsgs              = 20008
MaxJobCount             = 10000
MaxJobId                = 67043328
MinJobAge               = 300 sec
SchedulerParameters     = (null)
SLURM_VERSION           = 22.05.8
"""


def test_limits_are_read_from_scontrol_show_config():
    limits = parse_slurm_config(SCONTROL_CONFIG)
    assert limits == ArrayLimits(max_array_size=1001, max_job_count=10000, max_array_tasks=None)
    assert limits.tasks_per_array == 1001  # indices 0..1000


def test_max_array_tasks_and_small_sizes_lower_the_chunk():
    text = SCONTROL_CONFIG.replace("= 1001", "= 100001").replace(
        "SchedulerParameters     = (null)",
        "SchedulerParameters     = bf_interval=30,max_array_tasks=1000,default_queue_depth=100")
    assert parse_slurm_config(text).tasks_per_array == 1000
    assert parse_slurm_config(SCONTROL_CONFIG.replace("= 1001", "= 4")).tasks_per_array == 4
    # MaxArraySize=0 disables arrays: one trial per job (submitit then submits plain jobs).
    assert parse_slurm_config(SCONTROL_CONFIG.replace("= 1001", "= 0")).tasks_per_array == 1
    # Nothing readable (no scontrol): Slurm's defaults, and MaxJobCount unknown.
    assert parse_slurm_config("") == ArrayLimits()


def test_chunks_fit_max_array_size_and_keep_the_trial_order():
    chunks = plan_chunks([1] * 10, tasks_per_array=4, parallelism=3)
    assert [c.positions for c in chunks] == [(0, 1, 2, 3), (4, 5, 6, 7), (8, 9)]
    assert [c.after for c in chunks] == [None, 0, 1]  # one chain: each waits for the last
    assert [c.parallelism for c in chunks] == [3, 3, 2]
    exact = plan_chunks([1] * 8, tasks_per_array=4, parallelism=64)
    assert [len(c.positions) for c in exact] == [4, 4]  # indices 0..3 < MaxArraySize 4


def test_parallelism_is_shared_between_workers_groups():
    # 6 trials of workers=1 and 2 of workers=2, K=4: two lanes, 3 + 1 running at once.
    chunks = plan_chunks([1, 1, 2, 1, 1, 2, 1, 1], tasks_per_array=4, parallelism=4)
    by_workers = {c.workers: [] for c in chunks}
    for c in chunks:
        by_workers[c.workers].append(c)
    assert [c.positions for c in by_workers[1]] == [(0, 1, 3, 4), (6, 7)]
    assert [c.positions for c in by_workers[2]] == [(2, 5)]
    assert [c.parallelism for c in by_workers[1]] == [3, 2]  # a chunk of 2 needs no more
    assert by_workers[2][0].parallelism == 1 and by_workers[2][0].after is None
    # K=1: every group in one lane, so one trial of the sweep runs at a time.
    one = plan_chunks([1, 2, 4, 1], tasks_per_array=1001, parallelism=1)
    assert len({c.lane for c in one}) == 1 and {c.parallelism for c in one} == {1}
    assert [c.after for c in one] == [None, 0, 1]


@pytest.mark.parametrize("seed", range(30))
def test_no_plan_runs_more_than_k_trials_at_once(seed):
    rng = random.Random(seed)
    workers = [rng.choice([1, 2, 4, 8]) for _ in range(rng.randint(1, 300))]
    k, per_array = rng.randint(1, 40), rng.randint(1, 50)
    chunks = plan_chunks(workers, per_array, k)
    assert sorted(p for c in chunks for p in c.positions) == list(range(len(workers)))
    lanes: dict[int, list[int]] = {}
    for i, c in enumerate(chunks):
        assert len(c.positions) <= per_array and len({workers[p] for p in c.positions}) == 1
        assert c.after is None or (c.after < i and chunks[c.after].lane == c.lane)
        lanes.setdefault(c.lane, []).append(i)
    for members in lanes.values():  # a lane is one chain: one chunk of it runs at a time
        assert [chunks[i].after for i in members] == [None, *members[:-1]]
    assert sum(max(chunks[i].parallelism for i in members) for members in lanes.values()) <= k


def test_share_parallelism_is_proportional_bounded_and_complete():
    assert share_parallelism([6, 2], 4) == [3, 1]
    assert share_parallelism([100, 100, 100], 64) in ([22, 21, 21], [21, 22, 21], [21, 21, 22])
    assert share_parallelism([2, 3], 64) == [2, 3]  # never above a lane's trials
    with pytest.raises(ValueError):
        share_parallelism([1, 1, 1], 2)


def test_scontrol_lines_give_each_array_task_its_state():
    text = ("JobId=130 ArrayJobId=128 ArrayTaskId=2 JobName=genbench-x JobState=RUNNING\n"
            "JobId=128 ArrayJobId=128 ArrayTaskId=3-5%2 JobName=genbench-x JobState=PENDING\n"
            "JobId=129 ArrayJobId=128 ArrayTaskId=0 JobState=COMPLETED\n"
            "JobId=140 JobName=genbench-x JobState=FAILED\n")
    assert _scontrol_states(text) == {"128_2": "RUNNING", "128_3": "PENDING", "128_4": "PENDING",
                                      "128_5": "PENDING", "128_0": "COMPLETED", "140": "FAILED"}


def test_submission_says_what_was_left_out():
    job = SubmittedTrial("abc", 0, 1, (1,), "7_0", "/logs", "t")
    text = SlurmSubmission((job,), queued=(job,), finished=2, deferred=("d1", "d2"), arrays=1,
                           limits=ArrayLimits(4, 10), log_folder="/logs").describe()
    assert "submitted 1 trial(s) as 1 job array(s) of at most 4 (MaxArraySize=4" in text
    assert "skipped 2 finished, 1 already queued" in text
    assert "2 not submitted" in text and "MaxJobCount=10" in text and "again" in text
