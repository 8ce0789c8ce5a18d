"""The README and docs/ stay true: their cheap commands run as written, and their links resolve.

Which commands run (the rule). Every fenced block opened with ```sh in README.md and
docs/*.md is read; backslash-continued lines are joined and blank or comment-only lines
dropped. A line runs when it is ONE simple command (no `|`, `&&`, `||`, `;`, `&`, `<`,
`>`, `$(` or backquotes outside quotes) and either
- its first word is `genbench` or `.venv/bin/genbench`, and it has `--help` / `-h`, or
  its subcommand is `plan`, `show` or `status` (they read, never write or train); or
- its first word is `python`, `python3` or `.venv/bin/python` followed by `-c` (the docs
  use such snippets only to read results).
Everything else (`make`, `genbench run/submit/report`, `sbatch`, `ray`, scripts) is shown
but not run here: it trains, installs or needs a cluster. Blocks meant as files, not as
commands to type (YAML, a batch script: ```bash), are not read.

How they run: each line through bash, with the venv's bin first on PATH, in a scratch
copy of the repository (its top-level entries symlinked, so nothing is written into the
repo) whose `results/` holds a small store for each built-in sweep (`demo`, `smoke`,
`seed-study`, `depth-study`) that a cheap command names as `results/<sweep>`: one ok row
per milestone of every trial, written through the store's own API. A nonzero exit fails
the test, naming the doc file and line (a command written alike on several pages runs
once, and a failure names every place). So cheap commands use built-in sweeps and
`results/<built-in>`; placeholders (`my-sweep.yaml`, `/shared/results`) belong only in
commands that are not run.

Links and paths: every docs/*.md page is linked from README's "Documentation" section, every
relative link names an existing file (and, after `#`, a heading there), and every repository
path in a code span (`suite/ranks/entry.py`) exists.
"""

from __future__ import annotations

import concurrent.futures
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DOCS = sorted((REPO / "docs").glob("*.md"))
PAGES = [REPO / "README.md", *DOCS]

GENBENCH = ("genbench", ".venv/bin/genbench")
PYTHON = ("python", "python3", ".venv/bin/python")
CHEAP_SUBCOMMANDS = ("plan", "show", "status")
TIMEOUT_S = 60
FENCE = re.compile(r"^(\s*)(```+|~~~+)\s*([\w+-]*)")


@dataclass(frozen=True)
class Command:
    page: Path
    line: int  # 1-based line of the command's first physical line
    text: str

    def where(self) -> str:
        return f"{self.page.relative_to(REPO)}:{self.line}"


def fenced_blocks(page: Path) -> list[tuple[str, int, list[str]]]:
    """(info string, line of the first content line, lines) of every fenced block."""
    blocks, current, opener = [], None, None
    for number, line in enumerate(page.read_text().splitlines(), start=1):
        match = FENCE.match(line)
        if current is None:
            if match:
                opener = match.group(2)
                current = (match.group(3).lower(), number + 1, [])
        elif match and match.group(2).startswith(opener[0]) and len(match.group(2)) >= len(opener) \
                and not match.group(3):
            blocks.append(current)
            current = None
        else:
            current[2].append(line)
    return blocks


def shell_commands(page: Path) -> list[Command]:
    """Every command line of the page's ```sh blocks, continuations joined."""
    commands = []
    for info, first, lines in fenced_blocks(page):
        if info != "sh":
            continue
        pending, start = "", 0
        for offset, line in enumerate(lines):
            if not pending:
                start = first + offset
                if not line.strip() or line.lstrip().startswith("#"):
                    continue
            if line.rstrip().endswith("\\"):
                pending += line.rstrip()[:-1] + " "
                continue
            commands.append(Command(page, start, (pending + line).strip()))
            pending = ""
        if pending:
            commands.append(Command(page, start, pending.strip()))
    return commands


def words_of(text: str) -> list[str] | None:
    """The command's words, or None when it is not one simple command."""
    if re.search(r"[|&;<>()`]", _outside_quotes(text)):
        return None
    try:
        return shlex.split(text, comments=True)
    except ValueError:  # unbalanced quotes: not something to run
        return None


def _outside_quotes(text: str) -> str:
    """The command's text outside quotes, up to a comment: where shell operators act."""
    out, quote, i = [], None, 0
    while i < len(text):
        ch = text[i]
        if quote:
            if ch == quote:
                quote = None
            elif ch == "\\" and quote == '"':
                i += 1
        elif ch in "'\"":
            quote = ch
        elif ch == "\\":
            i += 1
        elif ch == "#" and (i == 0 or text[i - 1].isspace()):
            break
        else:
            out.append(ch)
        i += 1
    return "".join(out)


def is_cheap(command: Command) -> bool:
    words = words_of(command.text)
    if not words:
        return False
    if words[0] in GENBENCH:
        if "--help" in words or "-h" in words:
            return True
        return len(words) > 1 and words[1] in CHEAP_SUBCOMMANDS
    return words[0] in PYTHON and len(words) > 2 and words[1] == "-c"


def cheap_commands() -> list[Command]:
    return [c for page in PAGES for c in shell_commands(page) if is_cheap(c)]


def venv_bin() -> Path:
    candidate = REPO / ".venv" / "bin"
    return candidate if (candidate / "genbench").exists() else Path(sys.executable).parent


@pytest.fixture(scope="module")
def scratch_repo(tmp_path_factory) -> Path:
    """The repository's top level, symlinked, with a small results store per built-in sweep."""
    root = tmp_path_factory.mktemp("docs-repo")
    for entry in REPO.iterdir():
        if entry.name not in ("results", "report"):
            (root / entry.name).symlink_to(entry)
    named = {m for c in cheap_commands() for m in re.findall(r"results/([\w.-]+)", c.text)}
    write_results(root / "results", named)
    return root


def write_results(out: Path, names: set[str]) -> None:
    """One ok row per milestone of every trial of the named built-in sweeps."""
    from suite.store import schema
    from suite.store.trial_store import TrialStore
    from suite.sweep.loader import load_sweep
    from suite.sweep.yaml_reader import builtin_sweeps
    from suite.trial.columns import config_columns, trial_config_record

    for name in sorted(names & set(builtin_sweeps())):
        for trial in load_sweep(name).trials:
            store = TrialStore.of(out, trial)
            store.directory.mkdir(parents=True)
            store.write_config(trial_config_record(trial))
            store.write_rows([{
                **config_columns(trial),
                schema.EPOCH: epoch,
                schema.STATUS: schema.STATUS_OK,
                schema.IMAGES_PER_SEC: 1000.0 + trial.index,
                "fd_domain": 100.0 / epoch,
                schema.TIMESTAMP: "2026-01-01T00:00:00+00:00",
            } for epoch in trial.milestones])


def run(command: Command, cwd: Path) -> tuple[Command, int, str]:
    env = {**os.environ, "PATH": f"{venv_bin()}{os.pathsep}{os.environ.get('PATH', '')}"}
    try:
        done = subprocess.run(["bash", "-c", command.text], cwd=cwd, env=env, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              timeout=TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired:
        return command, -1, f"timed out after {TIMEOUT_S} s"
    return command, done.returncode, done.stdout


@pytest.mark.parametrize("text, cheap", [
    ("genbench plan smoke", True),
    (".venv/bin/genbench status results/demo     # each trial's state", True),
    ("genbench report --help", True),
    ("""python -c 'import analysis; print(analysis.load_results("results/demo"))'""", True),
    ("genbench run smoke", False),
    ("genbench report results/demo --out report/demo", False),
    ("genbench plan smoke && genbench run smoke", False),
    ("genbench plan smoke > trials.txt", False),
    ("genbench show $(ls -d results/*)", False),
    ("make run", False),
    ("pip install tensorboard && tensorboard --logdir results/demo", False),
])
def test_the_rule(text, cheap):
    assert is_cheap(Command(REPO / "README.md", 1, text)) is cheap


def test_the_docs_have_cheap_commands_of_every_kind():
    words = [words_of(c.text) for c in cheap_commands()]
    kinds = {w[1] for w in words if w[0] in GENBENCH} | {"--help" for w in words if "--help" in w}
    assert {"plan", "show", "status", "--help"} <= kinds, kinds


def same_command(command: Command) -> tuple[str, ...]:
    """The words that decide what a command does: `genbench` however it is spelled."""
    words = words_of(command.text) or [command.text]
    return ("genbench", *words[1:]) if words[0] in GENBENCH else tuple(words)


def test_every_cheap_command_in_the_docs_runs(scratch_repo):
    by_words: dict[tuple[str, ...], list[Command]] = {}
    for command in cheap_commands():  # a command written on several pages runs once
        by_words.setdefault(same_command(command), []).append(command)
    firsts = [places[0] for places in by_words.values()]
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as pool:
        outcomes = list(pool.map(lambda c: run(c, scratch_repo), firsts))
    failures = [f"{', '.join(p.where() for p in by_words[same_command(c)])}: `{c.text}` "
                f"exited {code}:\n{output[-1500:]}" for c, code, output in outcomes if code != 0]
    assert not failures, "\n\n".join(failures)


# --- links -----------------------------------------------------------------------------------

LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")


def prose_lines(page: Path) -> list[tuple[int, str]]:
    """Lines outside fenced blocks, inline code removed."""
    lines, fenced, opener = [], False, ""
    for number, line in enumerate(page.read_text().splitlines(), start=1):
        match = FENCE.match(line)
        if match and not fenced:
            fenced, opener = True, match.group(2)
            continue
        if fenced:
            if match and match.group(2).startswith(opener[0]) and not match.group(3):
                fenced = False
            continue
        lines.append((number, re.sub(r"`[^`]*`", "", line)))
    return lines


def anchors(page: Path) -> set[str]:
    """GitHub's heading anchors of a page."""
    seen: dict[str, int] = {}
    found = set()
    for line in _heading_lines(page):
        slug = re.sub(r"[^\w\- ]", "", line.strip().lower()).replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        found.add(slug if count == 0 else f"{slug}-{count}")
    return found


def _heading_lines(page: Path) -> list[str]:
    """Heading texts (code spans keep their text, as GitHub's anchors do)."""
    headings, fenced, opener = [], False, ""
    for line in page.read_text().splitlines():
        match = FENCE.match(line)
        if match and not fenced:
            fenced, opener = True, match.group(2)
            continue
        if fenced:
            if match and match.group(2).startswith(opener[0]) and not match.group(3):
                fenced = False
            continue
        heading = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if heading:
            headings.append(heading.group(1).replace("`", ""))
    return headings


def relative_links(page: Path) -> list[tuple[int, str]]:
    return [(number, target) for number, line in prose_lines(page)
            for target in LINK.findall(line)
            if not re.match(r"^[a-z][a-z0-9+.-]*:", target)]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_relative_links_resolve(page):
    problems = []
    for number, target in relative_links(page):
        path_part, _, anchor = target.partition("#")
        linked = (page.parent / path_part).resolve() if path_part else page
        if not linked.exists():
            problems.append(f"{page.relative_to(REPO)}:{number}: {target}: no such file")
        elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
            problems.append(f"{page.relative_to(REPO)}:{number}: {target}: no heading "
                            f"#{anchor} in {linked.relative_to(REPO)}")
    assert not problems, "\n".join(problems)


def test_every_docs_page_is_in_the_readme_index():
    text = (REPO / "README.md").read_text()
    index = text.split("\n## Documentation", 1)
    assert len(index) == 2, "README.md has no '## Documentation' section"
    section = index[1].split("\n## ", 1)[0]
    listed = {Path(t.partition("#")[0]).name for t in LINK.findall(section)}
    assert DOCS, "docs/ holds no pages"
    missing = [p.name for p in DOCS if p.name not in listed]
    assert not missing, f"docs pages missing from README's Documentation index: {missing}"


REPO_PATH = re.compile(r"`((?:suite|analysis|tests|tools|benchmarks|slurm|docs)/[\w./-]*)`")


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_repository_paths_named_in_the_docs_exist(page):
    """A file or folder named in code spans (`suite/ranks/entry.py`) exists: modules move."""
    missing = [f"{page.relative_to(REPO)}:{number}: {path}"
               for number, line in enumerate(page.read_text().splitlines(), start=1)
               for path in REPO_PATH.findall(line) if not (REPO / path).exists()]
    assert not missing, "\n".join(missing)
