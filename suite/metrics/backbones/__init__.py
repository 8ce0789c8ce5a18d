"""Feature backbones (TensorFlow lives here) and their registry: each backbone is one
module listed in catalog.py that describes itself; the rest asks those descriptions.
May import: common, store, machine, data, metrics (the maths)."""
