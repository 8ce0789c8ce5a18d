"""Precision policies: which dtype the networks compute in, and loss scaling.

`fp32` computes and stores everything in float32. `mixed_bfloat16` and
`mixed_float16` are Keras 3's mixed policies: variables stay float32, layers
compute in the 16-bit type. Every network ends in a float32 layer, so outputs,
losses and whatever the metrics read are float32 under every policy.
`mixed_float16` also wraps each optimiser in a dynamic `LossScaleOptimizer`:
float16 gradients underflow without it (bfloat16 has float32's range and does
not need it).

Keras is imported lazily so that `suite.sweep.spec` can validate the axis without it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

FP32 = "fp32"
MIXED_BFLOAT16 = "mixed_bfloat16"
MIXED_FLOAT16 = "mixed_float16"
PRECISIONS: tuple[str, ...] = (FP32, MIXED_BFLOAT16, MIXED_FLOAT16)
DEFAULT_PRECISION = FP32

# genbench's name -> the Keras dtype policy.
KERAS_POLICIES: dict[str, str] = {
    FP32: "float32", MIXED_BFLOAT16: "mixed_bfloat16", MIXED_FLOAT16: "mixed_float16"}


def is_mixed(precision: str) -> bool:
    return KERAS_POLICIES[precision] != "float32"


@contextmanager
def precision_scope(precision: str) -> Iterator[None]:
    """Layers built inside take `precision`'s policy; the previous global policy returns after.

    Keras reads the global policy when a layer is constructed, so only the
    networks built inside get it: feature backbones and metric networks built
    later in the same process stay float32.
    """
    import keras

    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(KERAS_POLICIES[precision])
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def float32_output(x: Any, precision: str, name: str) -> Any:
    """`x` cast to float32 by a layer of its own under mixed policies (identity in fp32)."""
    if not is_mixed(precision):
        return x
    from keras import layers

    return layers.Activation("linear", dtype="float32", name=name)(x)


def scaled_optimizer(optimizer: Any, precision: str) -> Any:
    """`optimizer`, wrapped in a dynamic loss-scale optimiser under mixed_float16.

    The wrapper's `scale_loss` multiplies the loss before the gradient, and its
    `apply_gradients` unscales, skips a step whose gradients are not finite and
    halves the scale (doubling it after 2000 finite steps). Gradients are
    averaged across replicas while still scaled, so every replica takes the same
    skip decision. A plain optimiser's `scale_loss` returns the loss unchanged.
    """
    if precision != MIXED_FLOAT16:
        return optimizer
    import keras

    return keras.optimizers.LossScaleOptimizer(optimizer)
