"""A big results directory made from a few real trials, for analysis tests and timings:
each real trial's rows copied under new trial ids, seeds and latent sizes (written
consistently into every row and its config), metrics moved by a seeded, per-latent-size
effect plus per-seed noise so configurations differ and seeds spread."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from suite.store import schema
from suite.store.results import RESULT_FILE, read_parquet_once, result_files, trial_dir, write_rows

# Metrics a replica moves (the others are copied as they are).
MOVED = (schema.FD_DOMAIN, schema.KID_DOMAIN, schema.IMAGES_PER_SEC, schema.TRAIN_TIME_S)


def replicate_sweep(source: Path, out: Path, seeds: int, latent_dims: list[int],
                    sweep: str = "big", seed: int = 0) -> int:
    """Write len(real trials) x len(latent_dims) x seeds trials under `out/<sweep>`;
    return their count. Sample directories are symlinks to the real ones."""
    originals = [(p.parent, read_parquet_once(p).to_pylist())
                 for p in sorted(result_files(source))]
    if not originals:
        raise ValueError(f"no result files under {source}")
    rng = np.random.default_rng(seed)
    index = 0
    for z_i, latent in enumerate(latent_dims):
        for s in range(seeds):
            for real, rows in originals:
                trial_id = f"r{index:05d}"
                directory = trial_dir(out, sweep, trial_id)
                directory.mkdir(parents=True, exist_ok=True)
                noise = float(rng.normal(0.0, 0.05))
                write_rows(directory / RESULT_FILE,
                           [_replica(r, sweep, trial_id, index, s, latent, z_i, noise)
                            for r in rows])
                samples = real / "samples"
                if samples.is_dir():
                    os.symlink(samples.resolve(), directory / "samples")
                index += 1
    return index


def _replica(row: dict, sweep: str, trial_id: str, index: int, seed: int, latent: int,
             z_i: int, noise: float) -> dict:
    out = dict(row)
    out.update({schema.SWEEP: sweep, schema.TRIAL_ID: trial_id, schema.TRIAL_INDEX: index,
                schema.SEED: seed, schema.LATENT_DIM: latent})
    for column in MOVED:
        if out.get(column) is not None:
            out[column] = float(out[column]) * (1.0 + 0.1 * z_i + noise)
    if out.get(schema.CONFIG_JSON):
        config = json.loads(out[schema.CONFIG_JSON])
        config.update(seed=seed, latent_dim=latent)
        out[schema.CONFIG_JSON] = json.dumps(config)
    return out
