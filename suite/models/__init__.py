"""Model catalogue: the MODELS and UPSAMPLERS registries.

Entries are lazy ("module:factory") so that validating a sweep imports no
Keras; `MODELS.tags(name)` says whether a model is conditional.
"""

from __future__ import annotations

from suite.common.registry import Registry

MODELS: Registry = Registry("model")
MODELS.add("dcgan", "suite.models.gan:build_gan", family="gan", conditional=False)
MODELS.add("vae", "suite.models.vae:build_vae", family="vae", conditional=False)
MODELS.add("cgan", "suite.models.gan:build_gan", family="gan", conditional=True)
MODELS.add("cvae", "suite.models.vae:build_vae", family="vae", conditional=True)

UPSAMPLERS: Registry = Registry("upsampling")
UPSAMPLERS.add("transpose", "suite.models.upsampling:build_transpose")
UPSAMPLERS.add("nearest", "suite.models.upsampling:build_nearest")
UPSAMPLERS.add("bilinear", "suite.models.upsampling:build_bilinear")
UPSAMPLERS.add("subpixel", "suite.models.upsampling:build_subpixel")


def is_conditional(model: str) -> bool:
    return bool(MODELS.tags(model)["conditional"])


def model_family(model: str) -> str:
    return str(MODELS.tags(model)["family"])
