"""On-disk caches of genbench's metrics: written atomically, shared by processes.

Everything lives under `${GENBENCH_CACHE:-~/.cache/genbench}`:

    <backbone>/...                            a backbone's own files (e.g. trained weights)
    reference/<key naming every choice>.npz   real-data statistics, features, k-NN radii
                                              and the real-vs-real floor (here)

Files are written with the project's one atomic writer (suite.common.atomic.write_atomic:
a temporary name in the same directory, fsync, rename), so a reader never sees
half a file and a full disk leaves no temporary file behind. Expensive entries
are computed under an exclusive `fcntl` lock, so concurrent trials and
processes compute each one once and the others wait and read it; without
working locks (some network file systems) the rename still keeps every file
whole, at the price of duplicate work.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import re
import sys
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from suite.common.atomic import write_atomic
from suite.common.cache_dir import CACHE_ENV, cache_root  # noqa: F401  (re-exported)
from suite.metrics.fid import GaussianStats, PreparedReference, features_to_stats, prepare_reference
from suite.metrics.precision_recall import features_to_knn_radii

REFERENCE_DIR = "reference"
# 2: k-NN radii and the real-vs-real floor are stored with the statistics (format-1 files
# hold neither, so their key no longer matches and they are recomputed, never misread).
REFERENCE_FORMAT = 2
# Real features kept for KID and precision/recall: all of them up to this many
# (10k x 2048 float32 Inception features are 80 MB); the Gaussian statistics
# always use all n images.
REAL_FEATURE_CAP = 10_000


def safe_name(text: str) -> str:
    """A file-name-safe spelling of `text` (readable; uniqueness comes from the hash)."""
    return re.sub(r"[^A-Za-z0-9_.=+-]+", "_", text).strip("_") or "_"


def arrays_to_hash(*arrays: np.ndarray | None) -> str:
    """sha256 over the dtype, shape and bytes of each array (None counts as absent)."""
    digest = hashlib.sha256()
    for a in arrays:
        if a is None:
            digest.update(b"none;")
            continue
        a = np.ascontiguousarray(a)
        digest.update(f"{a.dtype.str}{a.shape};".encode())
        if a.size:  # an empty array has no bytes (and memoryview refuses to cast it)
            digest.update(memoryview(a).cast("B"))
    return digest.hexdigest()


def file_to_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on `<path>.lock` (blocks while another process holds it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX)
        except OSError:  # no locks on this file system: atomic renames still keep files whole
            pass
        try:
            yield
        finally:
            with contextlib.suppress(OSError):
                fcntl.flock(handle, fcntl.LOCK_UN)


# --- reference statistics -----------------------------------------------------------------


@dataclass(frozen=True)
class ReferenceKey:
    """Every choice that determines the real-data side of a metric."""

    dataset: str
    split: str
    backbone: str
    weights_id: str
    n: int
    resize: str
    data_hash: str  # of the n images (and labels) actually used, and the floor's images
    protocol: str = ""  # the metric settings behind the cached radii and floor

    def filename(self) -> str:
        readable = "_".join(safe_name(part) for part in (
            self.dataset, self.split, self.backbone, self.weights_id, f"n{self.n}", self.resize,
            f"f{REFERENCE_FORMAT}"))
        return f"{readable[:180]}_{self.data_hash[:16]}.npz"

    def to_json(self) -> str:
        return json.dumps({**asdict(self), "format": REFERENCE_FORMAT}, sort_keys=True)


@dataclass(frozen=True, eq=False)
class RealReference:
    """The real side of every metric: statistics, the prepared FD reference, features,
    their k-NN radii, and the real-vs-real noise floor of each metric."""

    stats: GaussianStats
    prepared: PreparedReference
    features: np.ndarray  # (min(n, REAL_FEATURE_CAP), d) float32
    labels: np.ndarray | None  # class labels of those features, when the data has them
    radii: np.ndarray | None = None  # squared k-NN radii of `features`, k = `neighbours`
    neighbours: int = 0  # 0: no radii stored
    floor: dict[str, float] = field(default_factory=dict)  # metric -> real-vs-real value
    n_floor: int = 0  # images in each of the floor's two real subsets (0: no floor)


def features_to_reference(features: np.ndarray, labels: np.ndarray | None,
                          neighbours: int = 0) -> RealReference:
    """Statistics over all features; the stored feature subset is rounded to float32
    here, so a freshly computed reference equals one read back from disk. With
    `neighbours` > 0, the k-NN radii of that subset are computed once, here."""
    stats = features_to_stats(features)
    kept = np.asarray(features[:REAL_FEATURE_CAP], dtype=np.float32)
    radii = features_to_knn_radii(kept, neighbours) if 0 < neighbours < len(kept) else None
    return RealReference(stats=stats, prepared=prepare_reference(stats), features=kept,
                         labels=None if labels is None else np.asarray(labels[:REAL_FEATURE_CAP]),
                         radii=radii, neighbours=neighbours if radii is not None else 0)


def reference_path(key: ReferenceKey) -> Path:
    return cache_root() / REFERENCE_DIR / key.filename()


def save_reference(path: Path, key: ReferenceKey, ref: RealReference) -> None:
    arrays = {
        "key_json": np.array(key.to_json()),
        "mu": ref.stats.mu, "sigma": ref.stats.sigma, "n": np.array(ref.stats.n),
        "trace_sigma": np.array(ref.prepared.trace_sigma), "sqrt_factor": ref.prepared.sqrt_factor,
        "features": ref.features, "neighbours": np.array(ref.neighbours),
        "floor_names": np.array(sorted(ref.floor), dtype=np.str_),
        "floor_values": np.array([ref.floor[m] for m in sorted(ref.floor)], dtype=np.float64),
        "n_floor": np.array(ref.n_floor),
    }
    if ref.labels is not None:
        arrays["labels"] = ref.labels
    if ref.radii is not None:
        arrays["radii"] = ref.radii

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:  # a file object: np.savez would append .npz to a name
            np.savez(f, **arrays)

    write_atomic(path, write)


def load_reference(path: Path, key: ReferenceKey) -> RealReference | None:
    """The cached reference, or None when absent, unreadable or for another key."""
    try:
        with np.load(path, allow_pickle=False) as f:
            if str(f["key_json"]) != key.to_json():
                return None  # a truncated-hash collision or an older format: recompute
            stats = GaussianStats(mu=f["mu"], sigma=f["sigma"], n=int(f["n"]))
            prepared = PreparedReference(mu=stats.mu, trace_sigma=float(f["trace_sigma"]),
                                         sqrt_factor=f["sqrt_factor"], n=stats.n)
            labels = f["labels"] if "labels" in f.files else None
            radii = f["radii"] if "radii" in f.files else None
            floor = {str(m): float(v) for m, v in zip(f["floor_names"], f["floor_values"],
                                                      strict=True)}
            return RealReference(stats=stats, prepared=prepared, features=f["features"],
                                 labels=labels, radii=radii,
                                 neighbours=int(f["neighbours"]) if radii is not None else 0,
                                 floor=floor, n_floor=int(f["n_floor"]))
    except (OSError, KeyError, ValueError):
        return None


_LOADED: dict[ReferenceKey, RealReference] = {}


def load_or_compute_reference(
    key: ReferenceKey,
    compute: Callable[[], RealReference | tuple[np.ndarray, np.ndarray | None]],
) -> RealReference:
    """The reference for `key`: from this process, else the disk cache, else `compute()`
    (a RealReference, or real features and labels), which is then cached. One process
    computes; others wait."""
    if key in _LOADED:
        return _LOADED[key]
    path = reference_path(key)
    ref = load_reference(path, key) if path.exists() else None
    if ref is None:
        with file_lock(path):
            ref = load_reference(path, key) if path.exists() else None
            if ref is None:
                # minutes for a big split: say so, or a log shows nothing meanwhile
                print(f"genbench: computing reference statistics {path.name} (once, then "
                      "cached)", file=sys.stderr, flush=True)
                computed = compute()
                ref = (computed if isinstance(computed, RealReference)
                       else features_to_reference(*computed))
                save_reference(path, key, ref)
    _LOADED[key] = ref
    return ref


def clear_loaded_references() -> None:
    """Forget references held in this process (the disk cache stays)."""
    _LOADED.clear()
