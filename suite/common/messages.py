"""Message helpers: how a user-facing message quotes a value or names a file.

Messages quote user input (sweep values, paths, array keys) and must stay one short
line whatever that input is: megabytes of text, control characters, an integer
Python refuses to print. Every room quotes through these, so every message cuts
the same way.
"""

from __future__ import annotations

import reprlib
from pathlib import Path
from typing import Any

QUOTE_CHARS = 60
PATH_CHARS = 200
_REPR = reprlib.Repr()
_REPR.maxstring = _REPR.maxother = QUOTE_CHARS


def _printable(text: str) -> str:
    return text if text.isprintable() else "".join(c if c.isprintable() else "?" for c in text)


def quote(value: Any, limit: int = QUOTE_CHARS) -> str:
    """repr(value) cut to about `limit` characters (a value from a file or flag)."""
    try:
        text = _REPR.repr(value)
    except ValueError:  # an int with more digits than Python will print
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def shorten(value: object, limit: int = QUOTE_CHARS) -> str:
    """str(value) on one printable line, cut to about `limit` characters."""
    text = _printable(str(value))
    return text if len(text) <= limit else text[: limit - 3] + "..."


def clip(text: str, limit: int = 200) -> str:
    """A message from elsewhere (it may quote user input) cut to about `limit` characters,
    in the middle: its start and its end ("... does not exist") both stay."""
    if len(text) <= limit:
        return text
    half = (limit - 5) // 2
    return f"{text[:half]} ... {text[-half:]}"


def show_path(path: object, limit: int = PATH_CHARS) -> str:
    """A file named in a message: whole unless absurdly long, then its tail (the name)."""
    text = _printable(str(path))
    return text if len(text) <= limit else "..." + text[-(limit - 3):]


def quote_path(path: object, limit: int = QUOTE_CHARS) -> str:
    """A path or address quoted briefly, keeping its end (the file's name)."""
    text = _printable(str(path))
    return repr(text) if len(text) <= limit - 2 else f"'...{text[-(limit - 5):]}'"


def format_bytes(n: float) -> str:
    """Bytes for people: 512 bytes, 3.2 MiB, 1.5 GiB."""
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n < 1024 or unit == "PiB":
            return f"{int(n)} bytes" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def is_file(path: Path) -> bool:
    """Path.is_file, but False for names the OS refuses (too long, NUL bytes)."""
    try:
        return Path(path).is_file()
    except (OSError, ValueError):
        return False
