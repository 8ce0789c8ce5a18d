"""The rules a dataset must follow, checked before any training starts.

An .npz's zip directory and .npy headers tell every key, shape, dtype and size, so the
sweep parser refuses a bad user file from its headers alone (cheap enough for every grid
point: no pixel is read). What only the values tell (label range, corrupt bytes) is
checked when the data is loaded. A size limit, `$GENBENCH_MAX_DATA_BYTES`, guards every
reader against files that declare or decompress to more than memory holds.

Header rules raise DataRuleError, a ValueError whose text is one short line naming the
file and the array (the spec turns it into a SpecError naming the sweep file and
`dataset`) and whose `fix` says what to do; load-time rules raise DataError with the fix
in its message. Unknown arrays in an npz are refused, not ignored: a typo such as
`y_tset` must not silently drop the labels. Nothing is unpickled.
"""

from __future__ import annotations

import functools
import math
import os
import struct
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from suite.common.errors import DataError
from suite.common.messages import format_bytes, shorten, show_path

MAX_DATA_ENV = "GENBENCH_MAX_DATA_BYTES"
MAX_CLASSES = 10_000
MIN_IMAGE_SIZE = 8
IMAGE_CHANNELS = (1, 3)
LABEL_KEY = {"x": "y", "x_train": "y_train", "x_test": "y_test"}  # images -> their labels
KNOWN_KEYS = (*LABEL_KEY, *LABEL_KEY.values())
GIB = 2**30
# What reading a hostile or damaged file may raise, from zipfile, gzip, zlib and numpy.
READ_ERRORS = (OSError, EOFError, ValueError, zipfile.BadZipFile, zlib.error, struct.error,
               NotImplementedError, RuntimeError, KeyError)
SAVE_FIX = ("save it with np.savez(path, x=images_uint8, y=labels), or with x_train, y_train, "
            "x_test, y_test")
RESAVE_FIX = "the file is damaged: save it again with np.savez"
LIMIT_FIX = (f"if the data is real, raise ${MAX_DATA_ENV} (bytes; default: the smaller of "
             "8 GiB and half the memory); otherwise re-create the file")
IMAGE_SIZE_FIX = "crop or pad the images to e.g. 28x28 or 32x32"
LABELS_FIX = ("labels are class indices 0..K-1 (np.unique(y, return_inverse=True)[1] maps any "
              "labels to them)")


# --- messages and limits -------------------------------------------------------------------


class DataRuleError(ValueError):
    """A broken rule: `str()` is "file: problem" (short, for the spec); `fix` is separate."""

    def __init__(self, where: str, what: str, fix: str) -> None:
        super().__init__(f"{where}: {what}")
        self.fix = fix

    def explain(self) -> str:
        return f"{self}\n  fix: {self.fix}"


def problem(where: str, what: str, fix: str) -> DataRuleError:
    return DataRuleError(where, what, fix)


def explain(exc: Exception, default_fix: str) -> str:
    """A message with its fix, for errors that may or may not carry one."""
    return f"{exc}\n  fix: {getattr(exc, 'fix', default_fix)}"


def physical_memory() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # not POSIX: assume a modest machine
        return 16 * GIB


def max_data_bytes() -> int:
    """The most bytes one dataset may declare: `$GENBENCH_MAX_DATA_BYTES`, else
    min(8 GiB, half the physical memory) (loading copies arrays at least once)."""
    raw = os.environ.get(MAX_DATA_ENV, "").strip()
    if not raw:
        return min(8 * GIB, physical_memory() // 2)
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value <= 0:
        raise problem(f"${MAX_DATA_ENV}", f"must be a positive whole number of bytes, got "
                      f"{shorten(raw)!r}", f"e.g. {MAX_DATA_ENV}=8000000000, or unset it")
    return value


def over_limit(nbytes: int, limit: int) -> str:
    """"7.5 GiB, over the 4.0 GiB limit"; exact byte counts when rounding hides the gap."""
    size, cap = format_bytes(nbytes), format_bytes(limit)
    if size == cap:
        size, cap = f"{nbytes:,} bytes", f"{limit:,}-byte"
    return f"{size}, over the {cap} limit"


def check_byte_budget(nbytes: int, where: str, what: str) -> None:
    limit = max_data_bytes()
    if nbytes > limit:
        raise problem(where, f"{what} {over_limit(nbytes, limit)}", LIMIT_FIX)


def image_size_problem(h: int, w: int, c: int) -> str | None:
    """The generators start at size/4 and double twice: square sizes divisible by 4."""
    if h != w or h % 4 or h < MIN_IMAGE_SIZE:
        return (f"images are {h}x{w}x{c}; genbench's models take square images whose side is "
                f"a multiple of 4 and at least {MIN_IMAGE_SIZE}")
    return None


# --- npz headers ------------------------------------------------------------------------------


@dataclass(frozen=True)
class NpzArray:
    """One array of an .npz as its headers declare it."""

    key: str
    member: str
    shape: tuple[int, ...]
    dtype: np.dtype

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * self.dtype.itemsize

    @property
    def image_shape(self) -> tuple[int, ...]:
        return self.shape[1:] + (1,) if len(self.shape) == 3 else self.shape[1:]


def inspect_npz(path: Path, limit: int) -> dict[str, NpzArray]:
    """Every member's zip and .npy header, checked for size and sanity; no data is read."""
    where = show_path(path)
    try:
        exists = path.is_file()
    except OSError:  # e.g. a name too long for the filesystem
        exists = False
    if not exists:
        raise problem(f"npz file {where!r}", "does not exist (or is not a file)",
                      "give the path of an existing .npz file (npz:/path/to/file.npz)")
    try:
        archive = zipfile.ZipFile(path)
    except (PermissionError, IsADirectoryError) as exc:
        raise problem(where, f"cannot be read ({shorten(exc.strerror)})",
                      "make the file readable by the user genbench runs as") from None
    except READ_ERRORS as exc:
        try:
            with open(path, "rb") as f:
                lone_npy = f.read(6) == b"\x93NUMPY"
        except OSError:
            lone_npy = False
        what = ("is a single .npy array (np.save), not an .npz" if lone_npy
                else f"is not an .npz (zip) file ({shorten(exc)})")
        raise problem(where, what, SAVE_FIX) from None
    arrays: dict[str, NpzArray] = {}
    total = 0
    with archive:
        for info in archive.infolist():
            key = info.filename[:-4] if info.filename.endswith(".npy") else None
            if key not in KNOWN_KEYS:
                what = (f"unknown array `{shorten(key)}`" if key is not None
                        else f"member `{shorten(info.filename)}` is no .npy array")
                raise problem(where, f"{what}; genbench reads only x, y or x_train, y_train, "
                              "x_test, y_test", f"remove or rename it: {SAVE_FIX}")
            if key in arrays:
                raise problem(where, f"`{key}` appears twice in the zip", RESAVE_FIX)
            if info.file_size > limit:
                raise problem(where, f"`{key}` decompresses to "
                              f"{over_limit(info.file_size, limit)}", LIMIT_FIX)
            arrays[key] = _read_npy_header(archive, info, key, where, limit)
            total += info.file_size
    if total > limit:
        raise problem(where, f"`{'`, `'.join(arrays)}` together hold "
                      f"{over_limit(total, limit)}", LIMIT_FIX)
    return arrays


def _read_npy_header(archive: zipfile.ZipFile, info: zipfile.ZipInfo, key: str, where: str,
                     limit: int) -> NpzArray:
    try:
        with archive.open(info) as f:
            version = np.lib.format.read_magic(f)
            if version not in ((1, 0), (2, 0)):
                raise ValueError(f"npy format version {version} is not supported")
            read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                           else np.lib.format.read_array_header_2_0)
            shape, _, dtype = read_header(f)
            data_offset = f.tell()
    except READ_ERRORS as exc:
        raise problem(where, f"`{key}` is not a readable .npy array ({shorten(exc)})",
                      RESAVE_FIX) from None
    declared = f"{shorten(tuple(shape))} {shorten(dtype, 20)}"
    if dtype.hasobject:
        raise problem(where, f"`{key}` is an object array ({declared}), which is never "
                      "unpickled", "save plain numbers: uint8 images, integer labels")
    if any(d < 0 for d in shape):
        raise problem(where, f"`{key}` declares a negative dimension {declared}", RESAVE_FIX)
    array = NpzArray(key, info.filename, tuple(shape), dtype)
    held = info.file_size - data_offset
    if array.nbytes > limit:
        raise problem(where, f"`{key}` declares {declared} = "
                      f"{over_limit(array.nbytes, limit)}", LIMIT_FIX)
    if array.nbytes != held:
        raise problem(where, f"`{key}` declares {declared} = {format_bytes(array.nbytes)} but "
                      f"holds {format_bytes(max(held, 0))}: a truncated or lying header",
                      RESAVE_FIX)
    return array


# --- npz layout: keys, shapes, dtypes, lengths -------------------------------------------------


def check_npz_layout(arrays: dict[str, NpzArray], where: str) -> None:
    """Which arrays go together, and the shape and dtype of each (headers only)."""
    keys = set(arrays)
    if not keys & {"x", "x_train", "x_test"}:
        raise problem(where, f"has no `x` array (found: {shorten(', '.join(keys) or 'nothing')})",
                      SAVE_FIX)
    stray = sorted(keys & {"x_train", "x_test", "y_train", "y_test"})
    if "x" in keys and stray:
        raise problem(where, f"holds both `x` and `{stray[0]}`: use x, y or x_train, x_test, "
                      "y_train, y_test", "keep either x (one set a test part is held out of) "
                      "and y, or the two splits x_train, x_test and their y_train, y_test")
    if "x_test" in keys and "x_train" not in keys:
        raise problem(where, "has `x_test` but no `x_train`",
                      "add `x_train`, or rename `x_test` to `x` to hold a test part out of it")
    for xkey, ykey in LABEL_KEY.items():
        if ykey in keys and xkey not in keys:
            raise problem(where, f"has `{ykey}` but no `{xkey}` for it to label",
                          "name labels after their images: y with x, y_train with x_train, "
                          "y_test with x_test")
    if {"x_train", "x_test"} <= keys and ("y_train" in keys) != ("y_test" in keys):
        given, missing = ("y_train", "y_test") if "y_train" in keys else ("y_test", "y_train")
        raise problem(where, f"has `{given}` but no `{missing}`: label both splits or neither",
                      f"add `{missing}`, or drop `{given}` to train unconditional models only")
    single = "x_test" not in keys
    for xkey in LABEL_KEY:
        if xkey in arrays:
            _check_images(arrays[xkey], where, min_count=2 if single else 1)
    if not single and arrays["x_test"].image_shape != arrays["x_train"].image_shape:
        raise problem(where, "`x_test` images are "
                      f"{'x'.join(map(str, arrays['x_test'].image_shape))} but `x_train` images "
                      f"are {'x'.join(map(str, arrays['x_train'].image_shape))}",
                      "save both splits at one size and channel count")
    for xkey, ykey in LABEL_KEY.items():
        if ykey in arrays:
            _check_label_header(arrays[ykey], arrays[xkey], where)


def _check_images(x: NpzArray, where: str, min_count: int) -> None:
    key, shape = x.key, x.shape
    if x.dtype != np.uint8 or len(shape) not in (3, 4):
        raise problem(where, f"`{key}` must be uint8 of shape (N,H,W) or (N,H,W,C), got "
                      f"{shorten(x.dtype, 20)} {shorten(shape)}",
                      "save x.astype(np.uint8) (pixels 0..255), one image per first index")
    if shape[0] < min_count:
        raise problem(where, f"`{key}` holds {shape[0]} image{'s' * (shape[0] != 1)}"
                      + ("; holding a test part out needs 2" if shape[0] == 1 else ""),
                      f"save at least {min_count} image{'s' * (min_count > 1)} in `{key}`")
    h, w, c = x.image_shape
    if c not in IMAGE_CHANNELS:
        raise problem(where, f"`{key}` images have {c} channels; genbench takes 1 (grey) or 3 "
                      "(colour)", "save (N,H,W) or (N,H,W,1) for grey, (N,H,W,3) for colour")
    size_problem = image_size_problem(h, w, c)
    if size_problem:
        raise problem(where, f"`{key}` {size_problem}", IMAGE_SIZE_FIX)


def _check_label_header(y: NpzArray, x: NpzArray, where: str) -> None:
    n = x.shape[0]
    if y.dtype.kind not in "iu":
        raise problem(where, f"`{y.key}` must hold integer class labels, got "
                      f"{shorten(y.dtype, 20)}", "save class indices 0..K-1 as integers, e.g. "
                      "y.astype(np.int64)")
    if y.shape in ((n,), (n, 1)):
        return
    if len(y.shape) == 1 or (len(y.shape) == 2 and y.shape[1] == 1):
        raise problem(where, f"`{y.key}` has {y.shape[0]} labels for the {n} images in "
                      f"`{x.key}`", f"give exactly one label per image: shape ({n},)")
    raise problem(where, f"`{y.key}` has shape {shorten(y.shape)}, not ({n},) or ({n}, 1): one "
                  f"label per image in `{x.key}`",
                  "save one class index per image (one-hot rows: y.argmax(1))")


@functools.lru_cache(maxsize=32)
def _checked(path: str, stamp: tuple[int, ...] | None, limit: int) -> dict[str, NpzArray]:
    arrays = inspect_npz(Path(path), limit)
    check_npz_layout(arrays, show_path(path))
    return arrays


def checked_npz(path: Path) -> dict[str, NpzArray]:
    """All header rules of a user npz; cached per file version (the spec asks per grid point)."""
    try:
        st = path.stat()
        stamp: tuple[int, ...] | None = (st.st_mtime_ns, st.st_size, st.st_ino, st.st_ctime_ns)
    except OSError:
        stamp = None
    return dict(_checked(str(path), stamp, max_data_bytes()))


# --- values (read when loading) ---------------------------------------------------------


def check_label_values(y: np.ndarray, where: str, key: str, max_classes: int = MAX_CLASSES,
                       fix: str = LABELS_FIX) -> np.ndarray:
    """Labels as int64 class indices in 0..max_classes-1 (checked before any cast wraps)."""
    y = y.reshape(-1)
    if y.size:
        lo, hi = int(y.min()), int(y.max())
        if lo < 0:
            raise DataError(f"{where}: `{key}` holds the negative label {lo}\n  fix: {fix}")
        if hi >= max_classes:
            whose = "genbench takes" if max_classes == MAX_CLASSES else "of this dataset"
            raise DataError(f"{where}: `{key}` holds the label {shorten(hi)}, over the "
                            f"{max_classes} classes {whose}\n  fix: {fix}")
    return y.astype(np.int64)
