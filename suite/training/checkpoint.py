"""Checkpoints of a model family: every network and optimiser variable, plus the
trainer's own state (epoch, clock), in one npz written atomically.

Variables are stored by position: the same trial builds the same model, so the
order is stable, and a shape check catches a mismatch loudly.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from keras import ops

from suite.common.atomic import write_atomic
from suite.models.base import GenerativeModel

EPOCH_KEY = "trainer/epoch"


def _variable_groups(model: GenerativeModel) -> dict[str, list]:
    groups = {"model": list(model.variables)}
    for j, optimizer in enumerate(model.optimizers):
        groups[f"optimizer{j}"] = list(optimizer.variables)
    return groups


def save_checkpoint(path: Path, model: GenerativeModel, epoch: int,
                    extra: dict[str, np.ndarray]) -> None:
    """Write `path` atomically (temp file + rename): a crash leaves the old one."""
    arrays = {f"{group}/{i}": ops.convert_to_numpy(v)
              for group, variables in _variable_groups(model).items()
              for i, v in enumerate(variables)}
    arrays[EPOCH_KEY] = np.asarray(epoch, dtype=np.int64)
    arrays.update(extra)

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:  # a file object: np.savez would append .npz to a name
            np.savez(f, **arrays)

    write_atomic(path, write)


def load_checkpoint(path: Path, model: GenerativeModel) -> tuple[int, dict[str, np.ndarray]]:
    """Restore variables in place; return (epoch, the non-variable arrays)."""
    model.build_optimizers()
    with np.load(path, allow_pickle=False) as f:
        stored = {k: f[k] for k in f.files}
    for group, variables in _variable_groups(model).items():
        for i, v in enumerate(variables):
            value = stored.pop(f"{group}/{i}")
            if tuple(value.shape) != tuple(v.shape):
                raise ValueError(f"checkpoint {path}: {group} variable {v.path} has shape "
                                 f"{value.shape}, the model {tuple(v.shape)}")
            v.assign(value)
    epoch = int(stored.pop(EPOCH_KEY))
    return epoch, stored
