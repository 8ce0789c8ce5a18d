"""The feature backbones genbench ships: one module each, exporting `BACKBONE`
(a suite.metrics.backbone.BackboneInfo that describes it).

Adding a backbone is writing its module and one line here; `features.py`
registers what this lists, in this order (the order `genbench` lists names in),
and evaluation code needs no change.
"""

from __future__ import annotations

BACKBONE_MODULES: tuple[str, ...] = (
    "suite.metrics.domain",
    "suite.metrics.inception",
)
