"""genbench: a benchmark suite for generative image models at cluster scale.

Importing this package is cheap on purpose: it pulls in no TensorFlow, so the
spec, schema and `analysis` stay usable on a laptop with pandas alone.
"""

__version__ = "0.1.0"
