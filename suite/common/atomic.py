"""The one way genbench writes a file: a temporary name beside it, fsync, rename.

Readers never see half a file, a crash leaves the previous version, and a
failed write (a full disk, a read-only directory) removes its temporary file
instead of leaving it to fill the disk further.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from suite.common.errors import GenbenchError

# errno values that mean "the disk (or quota) is full": no retry helps until space is freed.
DISK_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)


class DiskFullError(GenbenchError):
    """No space left where genbench writes: the sweep stops; nothing written is lost."""


def temporary_path(path: Path) -> Path:
    """A unique hidden name beside `path` that keeps its suffixes (Keras insists on them)."""
    suffix = "".join(path.suffixes)
    stem = path.name[: len(path.name) - len(suffix)] if suffix else path.name
    return path.with_name(f".{stem}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp{suffix}")


def write_atomic(path: Path, write: Callable[[Path], None], sync: bool = True) -> None:
    """Call `write(tmp)`, fsync the result, and rename it onto `path`.

    A full disk becomes a DiskFullError naming the file, after the temporary
    file is gone; any other error propagates, also without a temporary left.
    """
    path = Path(path)
    tmp = temporary_path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write(tmp)
        if sync:
            with open(tmp, "rb") as f:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        if exc.errno in DISK_FULL_ERRNOS:
            raise disk_full_error(path, exc) from None
        raise
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()


def write_bytes_atomic(path: Path, data: bytes) -> None:
    write_atomic(path, lambda tmp: tmp.write_bytes(data))


def write_text_atomic(path: Path, text: str) -> None:
    write_bytes_atomic(path, text.encode())


def write_json_atomic(path: Path, data: Any) -> None:
    write_text_atomic(path, json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")


def disk_full_error(path: Path, exc: OSError) -> DiskFullError:
    return DiskFullError(f"no space left on the device writing {path} ({exc.strerror})\n"
                         "  fix: free space there (or choose another --out), then re-run the "
                         "same command: finished trials are kept and interrupted ones resume")


def is_disk_full(exc: BaseException) -> bool:
    """True for a full disk anywhere in `exc`'s chain (TF and pyarrow wrap OSErrors)."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, DiskFullError):
            return True
        if isinstance(exc, OSError) and exc.errno in DISK_FULL_ERRNOS:
            return True
        if "No space left on device" in str(exc):
            return True
        exc = exc.__cause__ or exc.__context__
    return False
