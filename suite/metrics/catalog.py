"""The feature backbones genbench ships: one module each, exporting `BACKBONE`
(a suite.metrics.backbone.BackboneInfo that describes it).

Adding a backbone is writing its module and one line here; `features.py`
registers what this lists, in this order (the order `genbench` lists names in),
and evaluation code needs no change.
"""

from __future__ import annotations

BACKBONE_MODULES: tuple[str, ...] = (
    "suite.metrics.domain",  # domain: a classifier trained on the dataset itself
    "suite.metrics.inception_graph",  # inception: TTUR's frozen graph (published FIDs)
    "suite.metrics.inception",  # inception_keras: Keras InceptionV3 (genbench's own numbers)
)
