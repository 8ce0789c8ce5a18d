"""Hostile sweep files: each one is one short SpecError through `genbench plan` (exit 2,
the file and the field named, no traceback), raised before anything is expanded.

Inputs that used to hang, eat memory or crash run `genbench plan` in a child process
with a timeout and a memory cap, so a regression fails its test instead of the session.
"""

from __future__ import annotations

import dataclasses
import resource
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from suite.cli.main import main
from suite.common.errors import SpecError
from suite.sweep.loader import load_sweep
from suite.sweep.spec import MAX_TRIALS, check_batch_fill
from suite.training.batch_rule import batch_fill_problem

REPO = Path(__file__).resolve().parents[2]
BASE = "name: t\ndataset: mnist\nfixed: {model: vae}\n"
MAX_MESSAGE = 500


def assert_one_message(err: str, path: Path, *words: str) -> None:
    assert err.startswith("genbench: error: "), err[:MAX_MESSAGE]
    assert err.count("genbench: error:") == 1 and "Traceback" not in err, err[:MAX_MESSAGE]
    assert len(err) < MAX_MESSAGE, f"{len(err)} characters: {err[:MAX_MESSAGE]}"
    assert str(path) in err, err
    for word in words:
        assert word in err, f"{word!r} not in {err!r}"


def plan_error(path: Path, capsys, *words: str) -> str:
    """`genbench plan PATH` in this process: exit 2 and one short message with `words`."""
    assert main(["plan", str(path)]) == 2
    err = capsys.readouterr().err
    assert_one_message(err, path, *words)
    return err


def _cap_memory() -> None:
    limit = 3 << 30
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def plan_in_child(path: Path, *words: str) -> str:
    """`genbench plan PATH` in a child process (30 s, 3 GiB at most): exit 2, one message."""
    code = "import sys; from suite.cli.main import main; sys.exit(main(['plan', sys.argv[1]]))"
    proc = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True,
                          text=True, timeout=30, cwd=REPO, preexec_fn=_cap_memory)
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-MAX_MESSAGE:])
    assert_one_message(proc.stderr, path, *words)
    return proc.stderr


@pytest.fixture
def write_bytes(tmp_path):
    def write(data: bytes | str, name: str = "sweep.yaml") -> Path:
        path = tmp_path / name
        path.write_bytes(data.encode() if isinstance(data, str) else data)
        return path

    return write


# --- bytes that are not UTF-8 text ---------------------------------------------------------

NOT_UTF8 = {
    "latin-1": "name: café\ndataset: mnist\nfixed: {model: vae}\n".encode("latin-1"),
    "binary garbage": bytes(range(256)) * 8,
    "NUL byte": b"name: t\x00\ndataset: mnist\nfixed: {model: vae}\n",
    "UTF-16 with BOM": BASE.encode("utf-16"),
    "UTF-16 without BOM": BASE.encode("utf-16-le"),
    "UTF-8 cut mid-character": BASE.encode() + "description: é".encode()[:-1],
}


@pytest.mark.parametrize("case", sorted(NOT_UTF8))
def test_bytes_that_are_not_utf8_text(case, write_bytes, capsys):
    path = write_bytes(NOT_UTF8[case])
    err = plan_error(path, capsys, "UTF-8")
    assert "fix:" in err


# --- numbers: too long for Python, or absurd for an axis -----------------------------------

LONG_NUMBERS = {
    "5000-digit eval.n_samples": (BASE + "eval: {n_samples: " + "9" * 5000 + "}\n",
                                  "eval.n_samples"),
    "3000-hex-digit fixed seed": ("name: t\ndataset: mnist\nfixed: {model: vae, seed: 0x"
                                  + "f" * 3000 + "}\n", "fixed.seed"),
    "5000-digit grid value": ("name: t\ndataset: mnist\ngrid: {model: [vae], latent_dim: [8, "
                              + "1" * 5000 + "]}\n", "grid.latent_dim"),
}


@pytest.mark.parametrize("case", sorted(LONG_NUMBERS))
def test_numbers_with_thousands_of_digits(case, write_bytes, capsys):
    text, field = LONG_NUMBERS[case]
    plan_error(write_bytes(text), capsys, field, "too large")


ABSURD = {  # field -> (YAML, the bound the message must state)
    "fixed.batch_size": ("fixed: {model: vae, batch_size: 1000000000000000000000000000000}",
                         "65,536"),
    "fixed.latent_dim": ("fixed: {model: vae, latent_dim: 1000000000000}", "4,096"),
    "grid.epochs": ("fixed: {model: vae}\ngrid: {epochs: [1, 1000000000]}", "10,000"),
    "fixed.workers": ("fixed: {model: vae, workers: 1000000}", "1,024"),
    "grid.seed": ("fixed: {model: vae}\ngrid: {seed: [0, 1180591620717411303424]}",
                  "4,294,967,295"),
    "fixed.lr": ("fixed: {model: vae, lr: 1.0e+308}", "at most 10"),
    "fixed.kernel_size": ("fixed: {model: vae, kernel_size: 100001}", "31"),
    "fixed.max_train_images": ("fixed: {model: vae, max_train_images: 1000000000000000}",
                               "100,000,000"),
    "eval.n_samples": ("fixed: {model: vae}\neval: {n_samples: 1000000000000}", "1,000,000"),
    "eval.batch_size": ("fixed: {model: vae}\neval: {batch_size: 1000000000}", "10,000"),
}


@pytest.mark.parametrize("field", sorted(ABSURD))
def test_absurd_axis_values_name_their_bound(field, write_bytes, capsys):
    text, bound = ABSURD[field]
    plan_error(write_bytes(f"name: t\ndataset: mnist\n{text}\n"), capsys, field, bound)


# --- duplicate keys --------------------------------------------------------------------------

DUPLICATES = {
    "top level": ("name: t\ndataset: mnist\nname: u\nfixed: {model: vae}\n", "name", "line 3"),
    "grid": ("name: t\ndataset: mnist\ngrid:\n  model: [vae]\n  seed: [0]\n  model: [dcgan]\n",
             "grid.model", "line 6"),
    "fixed": ("name: t\ndataset: mnist\nfixed:\n  model: vae\n  seed: 1\n  seed: 2\n",
              "fixed.seed", "line 6"),
    "eval": (BASE + "eval: {n_samples: 20, n_samples: 30}\n", "eval.n_samples", "line 4"),
    "list of grids": ("name: t\ndataset: mnist\ngrid:\n  - {model: [vae]}\n"
                      "  - {model: [dcgan], seed: [1], seed: [2]}\n", "grid[1].seed", "line 5"),
}


@pytest.mark.parametrize("case", sorted(DUPLICATES))
def test_duplicate_keys_name_key_and_line(case, write_bytes, capsys):
    text, field, line = DUPLICATES[case]
    key = field.rsplit(".", 1)[-1]
    plan_error(write_bytes(text), capsys, field, f"duplicate key '{key}'", line)


def test_merge_keys_may_still_be_overridden(write_bytes):
    sweep = load_sweep(str(write_bytes(
        "name: t\ndataset: mnist\ngrid:\n  - &g {model: [vae], seed: [0]}\n"
        "  - {<<: *g, seed: [1]}\n")))
    assert [(t.model, t.seed) for t in sweep.trials] == [("vae", 0), ("vae", 1)]


# --- names and descriptions --------------------------------------------------------------------

BAD_NAMES = {
    "trailing newline": '"run1\\n"',
    "two trailing newlines": '"run1\\n\\n"',
    "101 characters": "a" * 101,
    "5000 characters": "b" * 5000,
    "dot-dot": "'..'",
    "dot": "'.'",
    "slash": "a/b",
    "parent path": "../up",
    "empty": "''",
}


@pytest.mark.parametrize("case", sorted(BAD_NAMES))
def test_name_is_one_safe_path_component(case, write_bytes, capsys):
    path = write_bytes(f"name: {BAD_NAMES[case]}\ndataset: mnist\nfixed: {{model: vae}}\n")
    plan_error(path, capsys, "name", "fix:")


@pytest.mark.parametrize("value", ["[1, 2]", "{a: 1}", "42", "'" + "d" * 20_000 + "'"])
def test_description_must_be_short_text(value, write_bytes, capsys):
    plan_error(write_bytes(BASE + f"description: {value}\n"), capsys, "description")


# --- alias bombs, recursion, depth, file size -----------------------------------------------------


def laughs(indent: str) -> str:
    """Nine levels of nine-fold aliases: 9**9 (387 million) values from 1 KB of YAML."""
    rows = [f"{indent}- &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    rows += [f"{indent}- &{c} [" + ", ".join([f"*{p}"] * 9) + "]"
             for p, c in zip("abcdefgh", "bcdefghi", strict=True)]
    return "\n".join(rows) + "\n"


ALIAS_BOMBS = {  # the old code hung in str(description), or echoed the value in a message
    "description": BASE + "description:\n" + laughs("  "),
    "grid.seed": "name: t\ndataset: mnist\ngrid:\n  model: [vae]\n  seed:\n" + laughs("  "),
    "fixed.model": "name: t\ndataset: mnist\nfixed:\n  model:\n" + laughs("    "),
}


@pytest.mark.parametrize("field", sorted(ALIAS_BOMBS))
def test_alias_bombs_are_refused_before_expansion(field, write_bytes):
    path = write_bytes(ALIAS_BOMBS[field])
    assert path.stat().st_size < 2048
    plan_in_child(path, field, "100,000")


def test_recursive_alias_is_refused(write_bytes, capsys):
    plan_error(write_bytes(BASE + "description: &d [x, *d]\n"), capsys, "description",
               "recursive")


@pytest.mark.parametrize("nesting", [
    "[" * 20_000 + "]" * 20_000,  # flow style: libyaml's scanner may refuse it first
    "".join(f"\n{'  ' * (i + 1)}k{i}:" for i in range(40)) + " 1",  # block style: ours
    "{a: " * 40 + "1" + "}" * 40,  # 40 mappings: over genbench's 32, under libyaml's limit
])
def test_deep_nesting_is_refused(write_bytes, nesting):
    """Whichever layer refuses it (genbench's event check or libyaml's own depth limit,
    whose wording changes between PyYAML releases), the answer has one class: exit 2,
    one message naming the file and the line, a fix, no traceback. 20,000 nested lists
    once killed the pure-Python loader (RecursionError) and libyaml's composer (a
    segfault), so depth is bounded on the event stream before anything is composed."""
    path = write_bytes(BASE + "description: " + nesting + "\n")
    message = plan_in_child(path, "nested", "line ")
    assert "levels" in message


def test_file_larger_than_one_mebibyte(write_bytes, capsys):
    filler = ("# " + "x" * 98 + "\n") * 11_000  # a valid sweep, but 1.1 MB
    plan_error(write_bytes(BASE + filler), capsys, "1024 KiB", "fix:")


def test_many_values_without_aliases(write_bytes):
    values = ", ".join(["0"] * 150_000)  # 450 KB: under the size limit, over the node limit
    plan_in_child(write_bytes(BASE.replace("fixed", "grid: {seed: [" + values + "]}\nfixed")),
                  "grid.seed", "100,000")


# --- grids too big to expand ----------------------------------------------------------------------


def test_million_trial_grid_is_refused_from_list_lengths(write_bytes):
    ten = ", ".join(str(i) for i in range(1, 11))
    axes = ("seed", "latent_dim", "batch_size", "kernel_size", "workers")
    text = BASE + "grid:\n" + "".join(f"  {a}: [{ten}]\n" for a in axes)
    text += "  lr: [" + ", ".join(f"{i}.0e-4" for i in range(1, 11)) + "]\n"
    path = write_bytes(text)
    assert path.stat().st_size < 1024  # the old code took minutes and gigabytes on this
    plan_in_child(path, "grid", "1,000,000", f"{MAX_TRIALS:,}", "split")


def test_list_of_grids_counts_every_grid(write_bytes):
    block = ("  - {seed: [" + ", ".join(map(str, range(100))) + "], latent_dim: ["
             + ", ".join(map(str, range(1, 61))) + "]}\n")
    plan_in_child(write_bytes(BASE + "grid:\n" + block * 2), "grid", "12,000", "split")


def test_epochs_do_not_count_as_trials_but_are_bounded(write_bytes, capsys):
    seeds = ", ".join(map(str, range(100)))
    sizes = ", ".join(map(str, range(1, 101)))
    ok = write_bytes(BASE + f"grid: {{seed: [{seeds}], latent_dim: [{sizes}], "
                     "epochs: [1, 2, 3]}\n", "ok.yaml")
    sweep = load_sweep(str(ok))  # exactly the limit: epochs are milestones, not trials
    assert len(sweep.trials) == MAX_TRIALS and sweep.trials[-1].milestones == (1, 2, 3)
    epochs = ", ".join(map(str, range(1, 202)))
    plan_error(write_bytes(BASE + f"grid: {{epochs: [{epochs}]}}\n"), capsys, "grid.epochs",
               "milestones")


# --- eval: checked by plan, as run would ------------------------------------------------------

BAD_EVAL = {
    "unknown backbone": ("{backbones: [domain, clip]}", "eval.backbones", "backbone 'clip'"),
    "backbone twice": ("{backbones: [domain, domain]}", "eval.backbones", "twice"),
    "backbones mapping": ("{backbones: {domain: 1}}", "eval.backbones", "list of backbone"),
    "too few samples": ("{n_samples: 5}", "eval.n_samples", "at least 10"),
    "eval batch 0": ("{batch_size: 0}", "eval.batch_size", "positive"),
}


@pytest.mark.parametrize("case", sorted(BAD_EVAL))
def test_plan_checks_eval_like_run(case, write_bytes, capsys):
    value, field, words = BAD_EVAL[case]
    plan_error(write_bytes(BASE + f"eval: {value}\n"), capsys, field, words)


def test_backbone_that_needs_labels_on_unlabelled_data(write_bytes, tmp_path, capsys):
    npz = tmp_path / "nolabels.npz"
    np.savez(npz, x=np.zeros((64, 16, 16), np.uint8))
    text = f"name: t\ndataset: 'npz:{npz}'\nfixed: {{model: vae}}\n"
    plan_error(write_bytes(text), capsys, "eval.backbones", "domain", "labels")
    fine = write_bytes(text + "eval: {backbones: [inception]}\n", "fine.yaml")
    assert load_sweep(str(fine)).trials[0].eval.backbones == ("inception",)


# --- wrong types anywhere -------------------------------------------------------------------------

WRONG_TYPES = {
    "eval scalar": (BASE + "eval: 5\n", "eval"),
    "grid list of scalars": ("name: t\ndataset: mnist\ngrid: [1]\n", "grid[0]"),
    "grid scalar": ("name: t\ndataset: mnist\ngrid: 5\n", "grid"),
    "fixed list": ("name: t\ndataset: mnist\nfixed: [model, vae]\n", "fixed"),
    "model mapping": ("name: t\ndataset: mnist\nfixed: {model: {a: 1}}\n", "fixed.model"),
    "grid value nested list": ("name: t\ndataset: mnist\ngrid: {model: [[vae]]}\n", "grid.model"),
    "boolean workers": ("name: t\ndataset: mnist\nfixed: {model: vae, workers: true}\n",
                        "fixed.workers"),
    "NaN lr": ("name: t\ndataset: mnist\nfixed: {model: vae, lr: .nan}\n", "fixed.lr"),
    "inf lr": ("name: t\ndataset: mnist\nfixed: {model: vae, lr: .inf}\n", "fixed.lr"),
    "float cap": ("name: t\ndataset: mnist\nfixed: {model: vae, max_train_images: 1.5}\n",
                  "fixed.max_train_images"),
    "date seed": ("name: t\ndataset: mnist\nfixed: {model: vae, seed: 2020-01-01}\n",
                  "fixed.seed"),
    "!!int abc": ("name: t\ndataset: mnist\ngrid: {model: [vae], seed: [!!int abc]}\n",
                  "grid.seed"),
    "!!bool maybe": ("name: t\ndataset: mnist\nfixed: {model: vae, seed: !!bool maybe}\n",
                     "fixed.seed"),
    "!!float x": ("name: t\ndataset: mnist\nfixed: {model: vae, lr: !!float x}\n", "fixed.lr"),
    "!!timestamp": ("name: t\ndataset: mnist\nfixed: {model: vae, seed: !!timestamp 2020-13-45}\n",
                    "fixed.seed"),
    "python tag": ("name: !!python/object:os.system {}\ndataset: mnist\n", "line 1"),
    "name list": ("name: [a]\ndataset: mnist\nfixed: {model: vae}\n", "name"),
    "dataset list": ("name: t\ndataset: [mnist]\nfixed: {model: vae}\n", "dataset"),
    "two documents": (BASE + "---\nname: u\n", "line 4"),
    "long unknown axis": ("name: t\ndataset: mnist\nfixed:\n  model: vae\n  " + "k" * 1000
                          + ": 1\n", "fixed.kkk"),
    "long model name": ("name: t\ndataset: mnist\nfixed: {model: " + "m" * 5000 + "}\n",
                        "fixed.model"),
}


@pytest.mark.parametrize("case", sorted(WRONG_TYPES))
def test_wrong_types_give_one_short_message(case, write_bytes, capsys):
    text, field = WRONG_TYPES[case]
    plan_error(write_bytes(text), capsys, field, "fix:")


# --- the one batch-fill rule ---------------------------------------------------------------------


def test_batch_fill_rule_names_trial_dataset_and_counts(write_bytes):
    assert batch_fill_problem(128, 128) is None
    assert "127 training images" in batch_fill_problem(127, 128)
    trial = load_sweep(str(write_bytes(
        "name: t\ndataset: mnist\nfixed: {model: vae, batch_size: 64, workers: 2}\n"))).trials[0]
    check_batch_fill(trial, 128, "src")
    with pytest.raises(SpecError) as info:
        check_batch_fill(trial, 100, "src")
    err = info.value
    assert err.field == "batch_size" and err.source == "src"
    for words in (f"trial {trial.index}", trial.trial_id, "mnist", "100", "128"):
        assert words in str(err)
    capped = load_sweep(str(write_bytes(
        "name: t\ndataset: mnist\nfixed: {model: vae, batch_size: 64, max_train_images: 640}\n",
        "capped.yaml"))).trials[0]
    check_batch_fill(capped, 60_000, "src")  # the cap (640) fills ten batches
    with pytest.raises(SpecError, match="50 training images"):
        check_batch_fill(capped, 50, "src")  # fewer images than the cap, and than a batch
    with pytest.raises(SpecError, match=r"\(max_train_images\): 32 training images"):
        check_batch_fill(dataclasses.replace(capped, max_train_images=32), 60_000, "src")
