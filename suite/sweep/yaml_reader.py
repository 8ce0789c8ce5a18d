"""Reading a sweep file's YAML without trusting it.

A sweep file is a few hundred bytes of hand-written text. Anything else -- bytes
that are not UTF-8, megabytes of data, a key given twice, aliases that expand to
millions of nodes ("billion laughs"), numbers with thousands of digits, nesting
hundreds deep -- is refused with one short SpecError naming the file, the field
and a fix, before any Python object is built from it. Messages never echo a
whole value: `quote` cuts it short.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from suite.common.errors import SpecError
from suite.common.messages import clip, quote

CONFIGS_PACKAGE = "suite.sweep.configs"
MAX_FILE_BYTES = 1 << 20  # 1 MiB: real sweep files are a few KB
MAX_NODES = 100_000  # YAML nodes with every alias expanded
MAX_DEPTH = 32  # nested collections; a sweep needs 4
MAX_NUMBER_CHARS = 40  # digits of one integer (Python refuses > 4300 with a ValueError)
MERGE_TAG = "tag:yaml.org,2002:merge"

# libyaml composes nodes recursively in C and crashes on deep nesting; its event
# parser is iterative, so `check_yaml_shape` bounds the depth with it first.
_Base: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


# --- files ---------------------------------------------------------------------------------


def builtin_sweeps() -> list[str]:
    """Names of the sweep files shipped in suite/sweep/configs."""
    files = resources.files(CONFIGS_PACKAGE).iterdir()
    return sorted(f.name[: -len(".yaml")] for f in files if f.name.endswith(".yaml"))


def read_sweep_text(path_or_name: str) -> tuple[str, str]:
    """Return (source label, YAML text) for a file path or a built-in sweep name."""
    path = Path(path_or_name)
    try:
        is_file = path.is_file()
    except (OSError, ValueError):  # a name too long, or with a NUL byte
        is_file = False
    if is_file:
        return str(path), read_text_file(path, str(path))
    if path_or_name in builtin_sweeps():
        ref = resources.files(CONFIGS_PACKAGE) / f"{path_or_name}.yaml"
        source = f"{path_or_name} (built-in {ref})"
        return source, decode_text(ref.read_bytes(), source)
    label = clip(path_or_name, 120)
    if path.suffix in (".yaml", ".yml") or "/" in path_or_name:
        raise SpecError(label, "file", "no such file", "give the path of a sweep YAML file")
    raise SpecError(
        label, "sweep", "neither a file nor a built-in sweep",
        f"give a sweep YAML path or one of: {', '.join(builtin_sweeps())}",
    )


def read_text_file(path: Path, source: str) -> str:
    """The file's text: at most MAX_FILE_BYTES of strict UTF-8 without NUL bytes."""
    try:
        with path.open("rb") as f:
            data = f.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise SpecError(source, "file", f"cannot read it: {clip(exc.strerror or str(exc))}",
                        "check the path and its permissions") from None
    return decode_text(data, source)


def decode_text(data: bytes, source: str) -> str:
    """Strict UTF-8 (a BOM is fine): Latin-1, UTF-16 and binary files get one message."""
    if len(data) > MAX_FILE_BYTES:
        raise SpecError(source, "file", f"larger than {MAX_FILE_BYTES // 1024} KiB; a sweep file "
                        "is a few KB of YAML", "give the path of the sweep YAML file")
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        raise SpecError(source, "file", "is UTF-16 text, not UTF-8",
                        "save the file as UTF-8 (e.g. `iconv -f UTF-16 -t UTF-8`)")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise SpecError(source, f"line {line}", f"not UTF-8 text (byte 0x{data[exc.start]:02x} "
                        f"at offset {exc.start})",
                        "save the file as UTF-8 YAML text (not Latin-1 or binary)") from None
    if "\0" in text:
        line = text.count("\n", 0, text.index("\0")) + 1
        raise SpecError(source, f"line {line}", "contains a NUL byte: binary data or UTF-16, "
                        "not YAML text", "save the file as UTF-8 YAML text")
    return text


# --- YAML ----------------------------------------------------------------------------------


def load_yaml(text: str, source: str) -> Any:
    """Parse one YAML document into plain Python values, or raise one SpecError."""
    try:
        check_yaml_shape(text, source)
        loader = SweepLoader(text, source)
        try:
            return loader.get_single_data()
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        raise _yaml_error(exc, source) from None
    except RecursionError:  # backstop: check_yaml_shape bounds the depth first
        raise SpecError(source, "(file)", "YAML nested too deeply",
                        f"nest at most {MAX_DEPTH} levels") from None


def check_yaml_shape(text: str, source: str) -> None:
    """Bound depth and alias-expanded size, and refuse recursive aliases, from the
    event stream alone: an alias bomb is caught before it is expanded.

    Each open collection is a frame [anchor, expanded size, is mapping, path,
    children seen, last key]; a closed anchor's size is remembered, so an alias
    costs the size of what it stands for (memoised, never expanded).
    """
    sizes: dict[str, int] = {}
    stack: list[list[Any]] = []
    total = 0
    for event in yaml.parse(text, Loader=_Base):
        if isinstance(event, yaml.CollectionEndEvent):
            anchor, size = stack.pop()[:2]
            if anchor is not None:
                sizes[anchor] = size
            if stack:
                stack[-1][1] += size
                stack[-1][4] += 1
            continue
        if not isinstance(event, yaml.NodeEvent):
            continue
        path = clip(_event_path(stack), 60)
        line = event.start_mark.line + 1
        if isinstance(event, yaml.AliasEvent):
            if any(frame[0] == event.anchor for frame in stack):
                raise SpecError(source, path, f"alias *{clip(str(event.anchor), 40)} (line {line}) "
                                "refers to a collection that contains it",
                                "write the values out instead of a recursive alias")
            size = sizes.get(event.anchor, 1)  # an undefined alias: the composer reports it
        else:
            size = 1
        total += size
        if total > MAX_NODES:
            raise SpecError(source, path, f"the YAML expands to more than {MAX_NODES:,} values "
                            f"(line {line}; aliases count as often as they are used)",
                            "write a small sweep file; split big sweeps into several files")
        if isinstance(event, yaml.CollectionStartEvent):
            if len(stack) >= MAX_DEPTH:
                raise SpecError(source, path, f"nested more than {MAX_DEPTH} levels deep "
                                f"(line {line})", "a sweep file needs only a few levels")
            stack.append([event.anchor, 1, isinstance(event, yaml.MappingStartEvent), path, 0,
                          None])
            continue
        if isinstance(event, yaml.ScalarEvent) and event.anchor is not None:
            sizes[event.anchor] = 1
        if stack:
            frame = stack[-1]
            if frame[2] and frame[4] % 2 == 0 and isinstance(event, yaml.ScalarEvent):
                frame[5] = event.value
            frame[1] += size
            frame[4] += 1


def _event_path(stack: list[list[Any]]) -> str:
    """Dotted path (grid.model, grid[1].seed) of the node that starts now."""
    if not stack:
        return "(top level)"
    _, _, is_mapping, path, seen, key = stack[-1]
    if not is_mapping:
        return f"{path}[{seen}]" if path != "(top level)" else f"[{seen}]"
    if seen % 2 == 0:  # a key: report the mapping that holds it
        return path
    return join_field(path, key)


def join_field(path: str, key: Any) -> str:
    label = key if isinstance(key, str) else quote(key)
    label = clip(label, 40)
    return label if path in ("", "(top level)") else f"{path}.{label}"


class SweepLoader(_Base):
    """Safe YAML loading that refuses duplicate keys and overlong numbers, naming
    the dotted path of the offending value."""

    def __init__(self, text: str, source: str) -> None:
        super().__init__(text)
        self.source = source
        self.paths: dict[int, str] = {}  # id(node) -> dotted path, set by its parent

    def field(self, node: yaml.Node) -> str:
        return self.paths.get(id(node)) or f"line {node.start_mark.line + 1}"

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep)
        except (ValueError, TypeError, KeyError, AttributeError, OverflowError):
            # e.g. `!!int abc`, `!!bool maybe`, `!!timestamp 2001-13-45`
            raise SpecError(self.source, self.field(node),
                            f"{clip(str(node.tag), 40)} value {quote(node.value)} (line "
                            f"{node.start_mark.line + 1}) cannot be read",
                            "write a plain value without an explicit tag") from None

    def construct_mapping(self, node: yaml.Node, deep: bool = False) -> Any:
        if isinstance(node, yaml.MappingNode):
            path = self.paths.get(id(node), "")
            lines: dict[Any, str] = {}
            for key_node, value_node in node.value:
                if key_node.tag == MERGE_TAG or not isinstance(key_node, yaml.ScalarNode):
                    continue  # merged keys may be overridden; other keys fail as unhashable
                key = self.construct_object(key_node)
                line = key_node.start_mark.line + 1
                field = join_field(path, key)
                self.paths.setdefault(id(value_node), field)
                where = f"line {line}, column {key_node.start_mark.column + 1}"
                if key in lines:
                    raise SpecError(self.source, field,
                                    f"duplicate key {quote(key)} ({lines[key]}, then {where})",
                                    "give each key once (YAML would keep only the last value)")
                lines[key] = where
        return super().construct_mapping(node, deep)

    def construct_sequence(self, node: yaml.Node, deep: bool = False) -> Any:
        path = self.paths.get(id(node), "")
        for i, child in enumerate(node.value):
            self.paths.setdefault(id(child), f"{path}[{i}]")
        return super().construct_sequence(node, deep)

    def construct_yaml_int(self, node: yaml.Node) -> int:
        text = self.construct_scalar(node)
        if len(text) > MAX_NUMBER_CHARS:
            raise SpecError(self.source, self.field(node),
                            f"a number of {len(text):,} characters (line "
                            f"{node.start_mark.line + 1}) is far too large",
                            "use a number of a sensible size (see the axis table in README.md)")
        return super().construct_yaml_int(node)


SweepLoader.add_constructor("tag:yaml.org,2002:int", SweepLoader.construct_yaml_int)


def _yaml_error(exc: yaml.YAMLError, source: str) -> SpecError:
    mark = getattr(exc, "problem_mark", None)
    where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "(file)"
    problem = clip(getattr(exc, "problem", None) or str(exc).splitlines()[0])
    if isinstance(exc, yaml.constructor.ConstructorError):
        return SpecError(source, where, f"unsupported YAML: {problem}",
                         "use plain YAML values (no tags such as !!python/...)")
    if "nesting depth" in problem:  # libyaml's own limit (PyYAML >= 6.0.4), before ours
        return SpecError(source, where, f"nested too deeply ({problem}; a sweep file may nest "
                         f"{MAX_DEPTH} levels)", "a sweep file needs only a few levels")
    return SpecError(source, where, f"malformed YAML: {problem}",
                     "fix the YAML syntax (indentation, colons, brackets)")

