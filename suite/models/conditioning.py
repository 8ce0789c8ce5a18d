"""How conditional models see their label: concatenated to z, and broadcast as
extra image channels into the discriminator / encoder (as in the original study)."""

from __future__ import annotations

from keras import ops


def one_hot_labels(labels, num_classes: int):
    return ops.one_hot(ops.cast(labels, "int32"), num_classes)


def condition_latent(z, one_hot):
    """z -> [z, one_hot]; identity for unconditional models (one_hot is None)."""
    return z if one_hot is None else ops.concatenate([z, ops.cast(one_hot, z.dtype)], axis=-1)


def condition_image(images, one_hot):
    """images (B,H,W,C) -> (B,H,W,C+K) with the one-hot label as constant channels."""
    if one_hot is None:
        return images
    _, height, width, _ = images.shape
    planes = ops.tile(ops.cast(one_hot, images.dtype)[:, None, None, :], (1, height, width, 1))
    return ops.concatenate([images, planes], axis=-1)
