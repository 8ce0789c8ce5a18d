"""The architecture, held by one test: which room may import which.

Rooms are the folders of `suite/` (plus the `analysis` package), read as the data
flow: sweep file -> trials -> launcher -> worker (data -> model -> train loop ->
metrics) -> results store -> analysis. Every import is checked, function-local
ones included (they still run, only later), by walking each module's syntax tree.
Frameworks stay in their rooms: Ray and submitit in launchers, Horovod in
training/horovod.py, TensorFlow never where a login node or a laptop answers
(`plan`, `status`, `show`, `submit`, analysis): asserted in fresh processes too.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

# room -> the rooms it may import (its own is always allowed). Lowest first.
ALLOWED: dict[str, set[str]] = {
    "common": set(),
    "store": {"common"},
    "machine": {"common", "store"},
    "data": {"common"},
    "models": {"common", "store"},
    "metrics": {"common", "store"},
    "backbones": {"common", "store", "machine", "data", "models", "metrics"},
    "training": {"common", "store", "machine", "models"},
    "sweep": {"common", "store", "data", "models", "backbones", "training"},
    "artifacts": {"common", "store"},
    "trial": {"common", "store", "machine", "data", "models", "metrics", "backbones",
              "training", "sweep", "artifacts"},
    "ranks": {"common", "store", "machine", "data", "models", "metrics", "backbones",
              "training", "sweep", "artifacts", "trial"},
    "launchers": {"common", "store", "machine", "data", "models", "metrics", "backbones",
                  "training", "sweep", "artifacts", "trial", "ranks"},
    "analysis": {"common", "store", "artifacts"},
    "cli": {"common", "store", "machine", "data", "models", "metrics", "backbones",
            "training", "sweep", "artifacts", "trial", "ranks", "launchers", "analysis"},
}
# Third-party frameworks -> the only places that may import them.
FRAMEWORKS: dict[str, tuple[str, ...]] = {
    "ray": ("suite/launchers/",),
    "submitit": ("suite/launchers/",),
    "horovod": ("suite/training/horovod.py",),
}
# Rooms that never import TensorFlow or Keras, not even inside a function.
NO_TENSORFLOW = ("common", "store", "sweep", "analysis")


def room_of(module: str) -> str | None:
    """The room of a dotted module name (None: not genbench's)."""
    parts = module.split(".")
    if parts[0] == "analysis":
        return "analysis"
    if parts[0] != "suite":
        return None
    if len(parts) == 1:
        return "common"  # `import suite` (its __version__)
    if parts[1] == "metrics" and len(parts) > 2 and parts[2] == "backbones":
        return "backbones"
    return parts[1] if parts[1] in ALLOWED else None


def module_name(path: Path) -> str:
    rel = path.relative_to(REPO).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


def imported_names(tree: ast.AST, module: str) -> list[tuple[int, str]]:
    """(line, dotted name) of every import, at any depth; `from pkg import mod` counts mod."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against this module's package
                base = ".".join(module.split(".")[:-node.level] + ([base] if base else []))
            found.append((node.lineno, base))
            found += [(node.lineno, f"{base}.{alias.name}") for alias in node.names
                      if room_of(f"{base}.{alias.name}") not in (None, room_of(base))]
    return found


def source_files() -> list[Path]:
    return sorted([*(REPO / "suite").rglob("*.py"), *(REPO / "analysis").rglob("*.py")])


def layer_violations(files: list[Path]) -> list[str]:
    """Every import that runs against ALLOWED or FRAMEWORKS, as 'file:line: what'."""
    problems = []
    for path in files:
        module = module_name(path)
        room = room_of(module)
        rel = path.relative_to(REPO).as_posix()
        for line, name in imported_names(ast.parse(path.read_text()), module):
            target = room_of(name)
            top = name.split(".")[0]
            if target is not None and target != room and target not in ALLOWED[room]:
                problems.append(f"{rel}:{line}: {room} imports {name} ({target})")
            if top in FRAMEWORKS and not rel.startswith(FRAMEWORKS[top]):
                problems.append(f"{rel}:{line}: {top} outside {', '.join(FRAMEWORKS[top])}")
            if top in ("tensorflow", "keras") and room in NO_TENSORFLOW:
                problems.append(f"{rel}:{line}: {room} imports {top}")
    return problems


def test_every_module_belongs_to_a_room() -> None:
    homeless = [module_name(p) for p in source_files() if room_of(module_name(p)) is None]
    assert not homeless, f"modules outside every room: {homeless}"


def test_imports_follow_the_rooms() -> None:
    problems = layer_violations(source_files())
    assert not problems, "imports against the layering:\n" + "\n".join(problems)


@pytest.mark.parametrize("bad_import", [
    "from suite.trial.run import run_trial",  # training reaching up into the worker
    "    from suite.sweep.spec import Trial",  # a function-local import counts too
    "import ray",  # a framework outside its room
])
def test_a_wrong_import_is_caught(tmp_path, monkeypatch, bad_import: str) -> None:
    """The check can fail: one wrong line planted in a copy of training/loop.py."""
    original = REPO / "suite" / "training" / "loop.py"
    body = f"def _planted():\n{bad_import}\n" if bad_import.startswith(" ") \
        else f"{bad_import}\n"
    copy = tmp_path / "suite" / "training" / "loop.py"
    copy.parent.mkdir(parents=True)
    copy.write_text(original.read_text() + "\n\n" + body)
    monkeypatch.setattr(sys.modules[__name__], "REPO", tmp_path)
    problems = layer_violations([copy])
    assert len(problems) == 1 and "suite/training/loop.py" in problems[0], problems


# ------------------------------------------------- commands a login node answers at once

LIGHT = textwrap.dedent("""
    import sys
    from suite.cli.main import main
    try:
        code = main(sys.argv[1:])
    except SystemExit as exc:
        code = exc.code
    heavy = sorted(m for m in sys.modules
                   if m.split(".")[0] in ("tensorflow", "keras", "horovod", "ray"))
    print("HEAVY", heavy, "CODE", code)
""")


@pytest.fixture(scope="module")
def small_results(tmp_path_factory) -> Path:
    """A sweep directory with one written trial (rows through the store, no training)."""
    from suite.store import schema
    from suite.store.trial_store import TrialStore
    from suite.sweep.loader import load_sweep
    from suite.trial.columns import config_columns, trial_config_record

    out = tmp_path_factory.mktemp("results")
    trial = load_sweep("smoke").trials[0]
    store = TrialStore.of(out, trial)
    store.write_config(trial_config_record(trial))
    store.write_rows([{**config_columns(trial), schema.EPOCH: m, schema.STATUS: "ok",
                       schema.IMAGES_PER_SEC: 100.0} for m in trial.milestones])
    return out / trial.sweep


@pytest.mark.parametrize("args", [
    ["plan", "smoke"], ["status", "{results}"], ["show", "{results}"],
    ["submit", "smoke", "--out", "{tmp}"], ["--help"],
])
def test_login_node_commands_import_no_tensorflow(args, small_results, tmp_path) -> None:
    argv = [a.format(results=small_results, tmp=tmp_path / "out") for a in args]
    proc = subprocess.run([sys.executable, "-c", LIGHT, *argv], capture_output=True,
                          text=True, timeout=120, cwd=REPO,
                          env={**os.environ, "PATH": str(tmp_path)})  # no sbatch: no cluster
    assert "HEAVY [] CODE" in proc.stdout, proc.stdout[-2000:] + proc.stderr[-2000:]
    if args[0] != "submit":  # submit has no cluster here: what matters is what it imported
        assert "CODE 0" in proc.stdout, proc.stdout[-2000:] + proc.stderr[-2000:]


def test_analysis_imports_no_tensorflow() -> None:
    code = ("import sys, analysis, analysis.report, analysis.plots; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('tensorflow', 'keras', 'horovod', 'ray')))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, cwd=REPO)
    assert proc.stdout.strip() == "[]", proc.stdout + proc.stderr[-2000:]
