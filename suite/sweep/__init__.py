"""Sweep files -> frozen Trials: reading YAML safely, axis values and their bounds, the
grid's expansion, and the built-in sweeps (configs/). May import: common, store, machine,
data, models, metrics (registries only: lazy, no TensorFlow), training (pure helpers)."""
