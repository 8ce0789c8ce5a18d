"""Run numpy/scipy linear algebra on one BLAS thread for a while.

The metric maths is small (128-d classifier features, 1000-sample Gram
matrices). On a busy machine, OpenBLAS' worker threads, which spin while
waiting, fight TensorFlow's thread pool and other processes for the cores:
measured on this project's shared 2-core machine, twenty 128x128 `eigh` took
2 s with OpenBLAS' default threads and 0.03 s with one. This limits OpenBLAS
(numpy's and scipy's copies) through its own C API, found among the loaded
libraries; where there is none (another BLAS, another OS), it does nothing.
"""

from __future__ import annotations

import ctypes
import functools
from collections.abc import Iterator
from contextlib import contextmanager

_PREFIXES = ("openblas", "scipy_openblas")
_SUFFIXES = ("", "64_", "_64_")


@functools.lru_cache(maxsize=1)
def _openblas_controls() -> tuple[tuple[ctypes._CFuncPtr, ctypes._CFuncPtr], ...]:
    """(get_num_threads, set_num_threads) of every OpenBLAS loaded in this process."""
    try:
        with open("/proc/self/maps") as f:
            paths = sorted({line.split()[-1] for line in f
                            if "openblas" in line.lower() and line.split()[-1].startswith("/")})
    except OSError:
        return ()
    controls = []
    for path in paths:
        try:
            lib = ctypes.CDLL(path, mode=ctypes.RTLD_LOCAL)
        except OSError:
            continue
        for name in (p + "_{}_num_threads" + s for p in _PREFIXES for s in _SUFFIXES):
            getter = getattr(lib, name.format("get"), None)
            setter = getattr(lib, name.format("set"), None)
            if getter is not None and setter is not None:
                getter.restype, setter.argtypes = ctypes.c_int, [ctypes.c_int]
                controls.append((getter, setter))
                break
    return tuple(controls)


@contextmanager
def blas_threads(n: int = 1) -> Iterator[None]:
    """Limit OpenBLAS to `n` threads inside the block; restore the previous counts after."""
    import numpy  # noqa: F401  (load numpy's and scipy's BLAS before looking for them)
    import scipy.linalg  # noqa: F401

    controls = _openblas_controls()
    previous = [get() for get, _ in controls]
    for _, set_threads in controls:
        set_threads(n)
    try:
        yield
    finally:
        for (_, set_threads), count in zip(controls, previous, strict=True):
            set_threads(count)
