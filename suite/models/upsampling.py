"""Decoder upsampling blocks, one factory per UPSAMPLERS entry.

Every factory has the same signature and returns a `keras.Sequential` with the
same output width, so variants differ only in how they enlarge the feature map:
that is the comparison the benchmark is for.

    build_X(filters, kernel_size, scale, name, activation=None, use_bias=False)

`scale` is 1 (a plain convolution of the same family) or 2 (double H and W).
"""

from __future__ import annotations

import keras
from keras import layers, ops


def build_transpose(filters: int, kernel_size: int, scale: int, name: str,
                    activation: str | None = None, use_bias: bool = False) -> keras.Sequential:
    """Conv2DTranspose with stride `scale`: the DCGAN block (kernel 5, stride 2 leaves
    checkerboards because the kernel does not divide evenly by the stride)."""
    return keras.Sequential([
        layers.Conv2DTranspose(filters, kernel_size, strides=scale, padding="same",
                               use_bias=use_bias, activation=activation),
    ], name=name)


def _resize_then_conv(interpolation: str):
    def build(filters: int, kernel_size: int, scale: int, name: str,
              activation: str | None = None, use_bias: bool = False) -> keras.Sequential:
        blocks = [layers.UpSampling2D(size=scale, interpolation=interpolation)] if scale > 1 else []
        blocks.append(layers.Conv2D(filters, kernel_size, padding="same", use_bias=use_bias,
                                    activation=activation))
        return keras.Sequential(blocks, name=name)

    build.__doc__ = (f"UpSampling2D({interpolation}) then Conv2D: resize-convolution, "
                     "which avoids checkerboards (Odena et al., 2016).")
    return build


build_nearest = _resize_then_conv("nearest")
build_bilinear = _resize_then_conv("bilinear")


@keras.saving.register_keras_serializable(package="genbench")
class ICNR(keras.initializers.Initializer):
    """Initialise a sub-pixel convolution so it starts as nearest-neighbour upsampling
    (Aitken et al., 2017): each group of scale^2 output channels shares one kernel."""

    def __init__(self, scale: int = 2, seed: int | None = None) -> None:
        self.scale = scale
        self.seed = seed

    def __call__(self, shape, dtype=None):
        groups = self.scale**2
        base_shape = (*shape[:-1], shape[-1] // groups)
        base = keras.initializers.GlorotUniform(seed=self.seed)(base_shape, dtype=dtype)
        # depth_to_space reads channel (i * scale + j) * C + c for sub-pixel (i, j):
        # tiling the base kernel along channels gives every sub-pixel the same kernel.
        return ops.tile(base, (1, 1, 1, groups))

    def get_config(self) -> dict:
        return {"scale": self.scale, "seed": self.seed}


@keras.saving.register_keras_serializable(package="genbench")
class DepthToSpace(layers.Layer):
    """Rearrange channels into an `scale`x larger map (pixel shuffle), TF's DCR order."""

    def __init__(self, scale: int = 2, **kwargs) -> None:
        super().__init__(**kwargs)
        self.scale = scale

    def call(self, x):
        _, h, w, c = x.shape  # spatial size and channels are static in our networks
        s = self.scale
        x = ops.reshape(x, (-1, h, w, s, s, c // (s * s)))
        x = ops.transpose(x, (0, 1, 3, 2, 4, 5))
        return ops.reshape(x, (-1, h * s, w * s, c // (s * s)))

    def compute_output_shape(self, input_shape):
        b, h, w, c = input_shape
        s = self.scale
        return (b, None if h is None else h * s, None if w is None else w * s, c // (s * s))

    def get_config(self) -> dict:
        return {**super().get_config(), "scale": self.scale}


def build_subpixel(filters: int, kernel_size: int, scale: int, name: str,
                   activation: str | None = None, use_bias: bool = False) -> keras.Sequential:
    """Conv2D to scale^2 x filters channels, then depth-to-space, ICNR-initialised."""
    if scale == 1:
        return _resize_then_conv("nearest")(filters, kernel_size, 1, name, activation, use_bias)
    return keras.Sequential([
        layers.Conv2D(filters * scale**2, kernel_size, padding="same", use_bias=use_bias,
                      kernel_initializer=ICNR(scale)),
        DepthToSpace(scale),
        *([layers.Activation(activation)] if activation else []),
    ], name=name)
