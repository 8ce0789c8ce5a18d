"""Decoder upsampling blocks, one factory per UPSAMPLERS entry.

Every factory has the same signature and returns a `keras.Sequential` with the
same output width, so variants differ only in how they enlarge the feature map:
that is the comparison the benchmark is for.

    build_X(filters, kernel_size, scale, name, activation=None, use_bias=False)

`scale` is 1 (a plain convolution of the same family) or 2 (double H and W).
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf
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


build_nearest_unfused = _resize_then_conv("nearest")
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


def nearest_fold(kernel_size: int, scale: int = 2) -> np.ndarray:
    """F[a, d, t] = 1 where tap t of a `kernel_size` convolution ("same" padding) on the
    `scale`x nearest-upsampled map reads the low-res pixel at offset d - r for output
    phase a (r = the offsets' radius): the fold from upsample-then-convolve to one
    convolution on the low-res map, shape (scale, 2r + 1, kernel_size)."""
    half = (kernel_size - 1) // 2
    offsets = [(a + t) // scale for a in range(scale) for t in range(-half, half + 1)]
    radius = max(abs(o) for o in offsets)
    fold = np.zeros((scale, 2 * radius + 1, kernel_size), np.float32)
    for a in range(scale):
        for t in range(-half, half + 1):
            fold[a, (a + t) // scale + radius, t + half] = 1.0
    return fold


def transpose_fold(kernel_size: int, scale: int = 2) -> tuple[np.ndarray, tuple[int, int]]:
    """(G, (before, after)): G[l, t] = 1 where tap t of the upsample-then-convolve kernel
    lands on tap l of the equivalent stride-`scale` transposed convolution, whose input
    is padded by `before`/`after` (explicit padding: out[m] = sum_j x[j] V[m - s*j + P])."""
    fold = nearest_fold(kernel_size, scale)
    radius = (fold.shape[1] - 1) // 2
    used = [(a, d) for a in range(scale) for d in range(fold.shape[1]) if fold[a, d].any()]
    index = {(a, d): a - scale * (d - radius) for a, d in used}
    low = min(index.values())
    length = max(index.values()) - low + 1
    g = np.zeros((length, kernel_size), np.float32)
    for (a, d), i in index.items():
        g[i - low] = fold[a, d]
    before = -low
    return g, (before, length - scale - before)


@keras.saving.register_keras_serializable(package="genbench")
class NearestUpConv2D(layers.Conv2D):
    """Nearest upsampling by `scale` then this Conv2D ("same", odd kernel), computed
    without the upsampled map: the kernel is folded into one convolution on the low-res
    input with scale^2 x filters channels, then depth-to-space (sub-pixel form). The
    same maths and the same weights as UpSampling2D + Conv2D, at (2r+1)^2 / k^2 / ... of
    the multiply-adds (kernel 5: 36 instead of 100 per low-res pixel and channel pair),
    and no scale^2-larger map to write, convolve and back-propagate through."""

    def __init__(self, filters: int, kernel_size: int, scale: int = 2, **kwargs) -> None:
        if kernel_size % 2 != 1 or kwargs.get("padding", "same") != "same":
            raise ValueError(f"NearestUpConv2D needs an odd kernel and 'same' padding, "
                             f"got kernel {kernel_size}")
        kwargs["padding"] = "same"
        super().__init__(filters, kernel_size, **kwargs)
        self.scale = scale
        self._transpose_fold, self._padding = transpose_fold(kernel_size, scale)

    def call(self, inputs):
        # One transposed convolution (stride `scale`) whose kernel G W G^T is the fold of
        # W: out[s*i + a] = sum_j x[j] V[s*i + a - s*j + P] (transpose_fold).
        g = ops.cast(self._transpose_fold, self.kernel.dtype)
        kernel = ops.einsum("yu,xv,uvio->yxoi", g, g, self.kernel)
        n, h, w = ops.shape(inputs)[0], inputs.shape[1], inputs.shape[2]
        s, before, after = self.scale, self._padding[0], self._padding[1]
        x = tf.nn.conv2d_transpose(inputs, kernel, (n, h * s, w * s, self.filters), s,
                                   padding=[[0, 0], [before, after], [before, after], [0, 0]])
        if self.use_bias:
            x = x + self.bias
        return self.activation(x) if self.activation is not None else x

    def compute_output_shape(self, input_shape):
        b, h, w, _ = input_shape
        s = self.scale
        return (b, None if h is None else h * s, None if w is None else w * s, self.filters)

    def get_config(self) -> dict:
        return {**super().get_config(), "scale": self.scale}


def build_nearest(filters: int, kernel_size: int, scale: int, name: str,
                  activation: str | None = None, use_bias: bool = False) -> keras.Sequential:
    """Nearest upsampling then Conv2D (resize-convolution), computed as one folded
    convolution (NearestUpConv2D): the same maths and weights as `build_nearest_unfused`,
    1.5x its images/s on the demo models (bench_trainer.py --section options). An even
    kernel has no fold and runs unfused."""
    if scale == 1 or kernel_size % 2 == 0:
        return build_nearest_unfused(filters, kernel_size, scale, name, activation, use_bias)
    return keras.Sequential([
        NearestUpConv2D(filters, kernel_size, scale, use_bias=use_bias, activation=activation),
    ], name=name)
