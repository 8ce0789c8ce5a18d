"""Per-trial artefacts beside the rows: sample grids and GIFs, TensorBoard event files.
May import: common, store."""
