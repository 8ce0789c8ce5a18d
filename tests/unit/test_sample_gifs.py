"""Animated GIFs of a trial's sample grids: written beside the PNGs, shown in the report."""

from __future__ import annotations

import re

import numpy as np
from PIL import Image

import analysis
from suite.artifacts.samples import GIF_NAME, save_grid_gif, save_grid_png
from suite.store import schema
from suite.store.results import RESULT_FILE, trial_dir, write_rows


def write_grids(samples_dir, epochs, rows=2, cols=3, size=8) -> list[np.ndarray]:
    """Real grids through save_grid_png: epoch e is a uniform grey of level e / 10."""
    images = []
    for e in epochs:
        batch = np.full((rows * cols, size, size, 1), e / 10, np.float32)
        save_grid_png(batch, rows, cols, samples_dir / f"epoch_{e:04d}.png")
        images.append(batch)
    return images


def frames_of(path) -> list[np.ndarray]:
    out = []
    with Image.open(path) as im:
        assert im.info.get("loop") == 0  # loops forever
        for i in range(im.n_frames):
            im.seek(i)
            out.append(np.asarray(im.convert("L")))
    return out


def test_gif_has_one_frame_per_milestone_in_epoch_order(tmp_path):
    write_grids(tmp_path, [10, 2, 5])
    path = save_grid_gif(tmp_path)
    assert path == tmp_path / GIF_NAME and not list(tmp_path.glob("*.tmp*"))
    frames = frames_of(path)
    assert len(frames) == 3
    # the grid cells (pad 2, scale 2: the first cell starts at pixel 4) carry the epoch's level
    levels = [int(f[6, 6]) for f in frames]
    assert levels == sorted(levels) and levels[0] == round(0.2 * 255) and levels[-1] == 255
    # the label strip under the grid holds dark text pixels
    grid_h = Image.open(tmp_path / "epoch_0002.png").height
    assert frames[0].shape[0] > grid_h and (frames[0][grid_h:] < 128).any()


def test_colour_grids_keep_their_colours_in_every_frame(tmp_path):
    for e, colour in ((1, (0.9, 0.1, 0.1)), (2, (0.1, 0.8, 0.2)), (3, (0.1, 0.2, 0.9))):
        batch = np.broadcast_to(np.asarray(colour, np.float32), (4, 8, 8, 3))
        save_grid_png(batch, 2, 2, tmp_path / f"epoch_{e:04d}.png")
    with Image.open(save_grid_gif(tmp_path)) as im:
        for i, colour in enumerate([(230, 26, 26), (26, 204, 51), (26, 51, 230)]):
            im.seek(i)
            got = np.asarray(im.convert("RGB"))[6, 6].astype(int)
            assert np.abs(got - colour).max() <= 8, (i, got)


def test_gif_stops_at_the_current_epoch_and_skips_damaged_grids(tmp_path):
    write_grids(tmp_path, [1, 2, 3])
    (tmp_path / "epoch_0002.png").write_bytes(b"not a png")
    (tmp_path / "epoch_0004.png").write_bytes(b"left by an earlier attempt")
    assert len(frames_of(save_grid_gif(tmp_path, upto_epoch=3))) == 2
    assert save_grid_gif(tmp_path / "empty") is None


def test_report_shows_each_trials_gif(tmp_path):
    for up in ("transpose", "nearest"):
        directory = trial_dir(tmp_path / "results", "syn", f"dcgan-{up}")
        write_grids(directory / "samples", [1, 2])
        if up == "transpose":
            save_grid_gif(directory / "samples")
        write_rows(directory / RESULT_FILE, [{
            schema.SCHEMA_VERSION_COL: schema.SCHEMA_VERSION, schema.SWEEP: "syn",
            schema.TRIAL_ID: f"dcgan-{up}", schema.TRIAL_INDEX: 0, schema.DATASET: "mnist",
            schema.MODEL: "dcgan", schema.UPSAMPLING: up, schema.LATENT_DIM: 8,
            schema.EPOCHS: 2, schema.EPOCH: e, schema.SEED: 0, schema.BATCH_SIZE: 32,
            schema.WORKERS: 1, schema.STATUS: "ok", schema.IMAGES_PER_SEC: 100.0,
            schema.SAMPLES_PNG: f"samples/epoch_{e:04d}.png",
            schema.TIMESTAMP: "2026-01-01T00:00:00+00:00"} for e in (1, 2)])
    out = tmp_path / "report"
    md, html, tex = analysis.write_report([tmp_path / "results" / "syn"], out,
                                          formats=["md", "html", "latex"])
    gifs = list((out / "figures").glob("*.gif"))
    assert [g.name for g in gifs] == ["samples_dcgan-transpose.gif"]
    assert len(frames_of(gifs[0])) == 2
    assert "figures/samples_dcgan-transpose.gif" in md.read_text()
    assert html.read_text().count("data:image/gif;base64,") == 1
    assert "No GIF" in md.read_text() and "dcgan/nearest" in md.read_text()
    assert "animated GIF" in tex.read_text()
    assert not re.search(r"includegraphics[^\n]*\.gif", tex.read_text())
