"""The networks every family is assembled from.

One generator/decoder body and one discriminator/encoder trunk for all four
models, so the families differ only in their objective. At 28x28x1 with
`transpose` and kernel 5, `build_generator` and `build_discriminator` are the
TensorFlow DCGAN tutorial networks the original study used.

The `upsampling` and `kernel_size` axes change only the generator/decoder: the
discriminator/encoder stays the tutorial's (kernel 5) so every variant is
judged by the same critic.

`depth` is the number of stride-1 blocks before the two upsampling blocks (the
tutorial has 1; 0 removes it, more add blocks of the same width) and `width`
multiplies every channel width of both networks, rounded to whole channels; both
apply identically to every upsampling variant, so variants stay comparable.

`precision` sets the dtype policy the networks compute in (suite/models/precision.py);
each network's output layer is float32 under every policy.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
from keras import layers

from suite.models import UPSAMPLERS
from suite.models.precision import float32_output, precision_scope

GENERATOR_WIDTHS = (256, 128, 64)  # dense map, first conv, second conv (the tutorial's)
CRITIC_WIDTHS = (64, 128)
CRITIC_KERNEL = 5
DROPOUT = 0.3


@dataclass(frozen=True)
class NetSpec:
    """What the networks (and their optimisers) need to know about a trial and its data.
    Model factories keep the signature (spec, lr, seed)."""

    image_shape: tuple[int, int, int]
    latent_dim: int
    num_classes: int  # 0 for unconditional models
    upsampling: str
    kernel_size: int
    precision: str = "fp32"  # a suite.models.precision.PRECISIONS name
    depth: int = 1  # stride-1 blocks of the generator/decoder (the tutorial's 1)
    width: float = 1.0  # multiplier on every channel width of both networks
    beta1: float = 0.9  # Adam's first-moment decay of the model's optimisers (base.build_adam)


def scaled_width(channels: int, width: float) -> int:
    """`channels` x `width`, rounded to a whole number of channels (at least one)."""
    return max(1, round(channels * width))


def generator_widths(spec: NetSpec) -> tuple[int, int, int]:
    """Dense-map, stride-1 and stride-2 block widths of the generator/decoder."""
    dense_w, conv1_w, conv2_w = (scaled_width(c, spec.width) for c in GENERATOR_WIDTHS)
    return dense_w, conv1_w, conv2_w


def critic_widths(spec: NetSpec) -> tuple[int, ...]:
    return tuple(scaled_width(c, spec.width) for c in CRITIC_WIDTHS)


def stride1_block_names(depth: int) -> list[str]:
    """up1 (the tutorial's block), then up1_2, up1_3, ...: the stride-2 blocks keep
    their names (up2, up3) whatever the depth."""
    return ["up1" if i == 0 else f"up1_{i + 1}" for i in range(depth)]


def build_generator(spec: NetSpec, output_activation: str | None, name: str) -> keras.Model:
    """z (+ one-hot label) -> image: Dense to (s/4)^2 x 256, `depth` stride-1 blocks,
    then two stride-2 upsampling blocks (the last one is the output layer)."""
    height, _, channels = spec.image_shape
    base = height // 4
    upsample = UPSAMPLERS.get(spec.upsampling)
    dense_w, conv1_w, conv2_w = generator_widths(spec)
    blocks = [(block, conv1_w, 1) for block in stride1_block_names(spec.depth)]
    blocks.append(("up2", conv2_w, 2))
    with precision_scope(spec.precision):
        z = keras.Input((spec.latent_dim + spec.num_classes,), name="z")
        x = layers.Dense(base * base * dense_w, use_bias=False)(z)
        x = layers.BatchNormalization()(x)
        x = layers.LeakyReLU()(x)
        x = layers.Reshape((base, base, dense_w))(x)
        for block_name, block_width, scale in blocks:
            x = upsample(block_width, spec.kernel_size, scale, name=block_name)(x)
            x = layers.BatchNormalization()(x)
            x = layers.LeakyReLU()(x)
        x = upsample(channels, spec.kernel_size, 2, name="up3", activation=output_activation)(x)
        image = float32_output(x, spec.precision, name="float32_image")
        return keras.Model(z, image, name=name)


def build_critic_trunk(spec: NetSpec, outputs: int, dropout: float, name: str) -> keras.Model:
    """image (+ label channels) -> `outputs` numbers: the discriminator / encoder."""
    height, width, channels = spec.image_shape
    with precision_scope(spec.precision):
        image = keras.Input((height, width, channels + spec.num_classes), name="image")
        x = image
        for w in critic_widths(spec):
            x = layers.Conv2D(w, CRITIC_KERNEL, strides=2, padding="same")(x)
            x = layers.LeakyReLU()(x)
            if dropout:
                x = layers.Dropout(dropout)(x)
        x = layers.Flatten()(x)
        x = float32_output(layers.Dense(outputs)(x), spec.precision, name="float32_out")
        return keras.Model(image, x, name=name)


def build_discriminator(spec: NetSpec) -> keras.Model:
    return build_critic_trunk(spec, outputs=1, dropout=DROPOUT, name="discriminator")


def build_encoder(spec: NetSpec) -> keras.Model:
    """Gaussian encoder: mean and log-variance of q(z|x), concatenated."""
    return build_critic_trunk(spec, outputs=2 * spec.latent_dim, dropout=0.0, name="encoder")
