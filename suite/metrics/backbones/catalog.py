"""The feature backbones genbench ships: one module each, exporting `BACKBONE`
(a suite.metrics.backbones.base.BackboneInfo that describes it).

Adding a backbone is writing its module and one line here; `features.py`
registers what this lists, in this order (the order `genbench` lists names in),
and evaluation code needs no change.
"""

from __future__ import annotations

BACKBONE_MODULES: tuple[str, ...] = (
    "suite.metrics.backbones.domain",  # domain: a classifier trained on the dataset itself
    "suite.metrics.backbones.inception_graph",  # inception: TTUR's frozen graph (published FIDs)
    "suite.metrics.backbones.inception",  # inception_keras: Keras InceptionV3 (our own numbers)
)
