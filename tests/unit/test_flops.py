"""FLOP counts of genbench's networks against hand counts (suite/models/flops.py).

Convention (the module's): a multiply-add is 2 FLOPs and only weight layers count
(Dense, Conv2D, Conv2DTranspose); biases, batch norm, activations, dropout and
resizes are element-wise work kept apart and out of MFU.
"""

from __future__ import annotations

import keras
import pytest
from keras import layers

from suite.models.flops import (
    UncountedLayerError,
    eval_flops_per_image,
    model_forward_flops,
    network_flops,
    training_flops,
    training_flops_per_image,
)
from suite.models.gan import build_gan
from suite.models.networks import NetSpec
from suite.models.vae import build_vae

MNIST = (28, 28, 1)

# The TensorFlow DCGAN tutorial's generator, per image.
G_DENSE = 2 * 100 * (7 * 7 * 256)  # Dense 100 -> 12544, no bias: 2,508,800
G_UP1 = 2 * 5 * 5 * 256 * 128 * (7 * 7)  # Conv2DTranspose(128, 5, s1) over 7x7 inputs: 80,281,600
G_UP2 = 2 * 5 * 5 * 128 * 64 * (7 * 7)  # Conv2DTranspose(64, 5, s2): each of 7x7 inputs: 20,070,400
G_UP3 = 2 * 5 * 5 * 64 * 1 * (14 * 14)  # Conv2DTranspose(1, 5, s2): each of 14x14 inputs: 627,200
G_FORWARD = G_DENSE + G_UP1 + G_UP2 + G_UP3  # 103,488,000
# Its discriminator.
D_CONV1 = 2 * 5 * 5 * 1 * 64 * (14 * 14)  # Conv2D(64, 5, s2) 28x28x1 -> 14x14x64: 627,200
D_CONV2 = 2 * 5 * 5 * 64 * 128 * (7 * 7)  # Conv2D(128, 5, s2) -> 7x7x128: 20,070,400
D_DENSE = 2 * (7 * 7 * 128) * 1  # Dense 6272 -> 1: 12,544
D_FORWARD = D_CONV1 + D_CONV2 + D_DENSE  # 20,710,144

# One GAN.compute_gradients per image:
#   forward            G once, D on the real and on the fake image    F_G + 2 F_D
#   generator update   D input gradients down to the fake image       F_D
#                      G weight gradients, input gradients above z    F_G + (F_G - G_DENSE)
#   discriminator upd. D weight gradients on both branches            2 F_D
#                      D input gradients above the image, both        2 (F_D - D_CONV1)
DCGAN_STEP = 3 * G_FORWARD + 7 * D_FORWARD - G_DENSE - 2 * D_CONV1  # 451,671,808
# The "roughly 0.43 GFLOP": 3 x forward per network pass, D counted twice.
NAIVE_STEP = 3 * G_FORWARD + 6 * D_FORWARD  # 434,724,864


def tutorial_spec(upsampling: str = "transpose") -> NetSpec:
    return NetSpec(image_shape=MNIST, latent_dim=100, num_classes=0, upsampling=upsampling,
                   kernel_size=5)


@pytest.fixture(scope="module")
def dcgan():
    return build_gan(tutorial_spec(), lr=1e-4, seed=0)


def test_tutorial_generator_and_discriminator_forward(dcgan):
    assert G_FORWARD == 103_488_000 and D_FORWARD == 20_710_144
    g = network_flops(dcgan.generator)
    assert [layer.matmul for layer in g.layers if layer.matmul] == [G_DENSE, G_UP1, G_UP2, G_UP3]
    assert model_forward_flops(dcgan.generator) == G_FORWARD
    assert model_forward_flops(dcgan.discriminator) == D_FORWARD


def test_tutorial_training_step(dcgan):
    step = training_flops(dcgan)
    assert training_flops_per_image(dcgan) == step.total == DCGAN_STEP == 451_671_808
    # Against the 0.43 GFLOP: +1 D backward to the image for the G update,
    # minus the two first-layer input gradients nothing needs.
    assert step.total - NAIVE_STEP == D_FORWARD - G_DENSE - 2 * D_CONV1
    assert abs(NAIVE_STEP / 1e9 - 0.43) < 0.01
    assert step.by("phase")["forward"] == G_FORWARD + 2 * D_FORWARD
    assert step.by("network") == {"generator": 3 * G_FORWARD - G_DENSE,
                                  "discriminator": 7 * D_FORWARD - 2 * D_CONV1}


def test_elementwise_is_counted_apart(dcgan):
    g = network_flops(dcgan.generator)
    # BN: 4 per element over 12544 + 6272 + 12544; LeakyReLU 1 each; tanh on 784 outputs.
    assert g.elementwise == 4 * 31360 + 31360 + 784
    with_elementwise = model_forward_flops(dcgan.generator, include_elementwise=True)
    assert with_elementwise == G_FORWARD + g.elementwise


@pytest.mark.parametrize("upsampling", ["nearest", "bilinear", "subpixel"])
def test_resize_and_subpixel_generators(upsampling):
    """Nearest and bilinear convolve after the resize (at 14x14 and 28x28); sub-pixel
    convolves before it to 4x the channels (at 7x7 and 14x14): the same matmul work."""
    gen = build_gan(tutorial_spec(upsampling), lr=1e-4, seed=0).generator
    up2 = 2 * 5 * 5 * 128 * 64 * (14 * 14)
    up3 = 2 * 5 * 5 * 64 * 1 * (28 * 28)
    assert model_forward_flops(gen) == G_DENSE + G_UP1 + up2 + up3
    bilinear = 7 * (14 * 14 * 128 + 28 * 28 * 64)
    extra = network_flops(gen).elementwise - (4 * 31360 + 31360 + 784)
    assert extra == (bilinear if upsampling == "bilinear" else 0)


def test_vae_step():
    vae = build_vae(tutorial_spec(), lr=1e-3, seed=0)
    encoder = D_CONV1 + D_CONV2 + 2 * 6272 * 200  # the critic trunk with a 2 x 100 head
    decoder = G_FORWARD  # the tutorial generator
    assert model_forward_flops(vae.encoder) == encoder
    # Forward both, then back through the decoder (to z) and the encoder (not to the image).
    assert training_flops_per_image(vae) == 3 * encoder + 3 * decoder - D_CONV1


def test_conditional_and_wider_networks_count_their_extra_inputs():
    spec = NetSpec(image_shape=MNIST, latent_dim=100, num_classes=10, upsampling="transpose",
                   kernel_size=5, width=0.5)
    gan = build_gan(spec, lr=1e-4, seed=0)
    assert network_flops(gan.generator).layers[0].matmul == 2 * 110 * (7 * 7 * 128)
    assert network_flops(gan.discriminator).first_layer == 2 * 25 * 11 * 32 * 196


def test_stride_enters_transposed_convolution_through_its_input():
    x = keras.Input((8, 8, 16))
    s1 = keras.Model(x, layers.Conv2DTranspose(4, 3, strides=1, padding="same")(x))
    s2 = keras.Model(x, layers.Conv2DTranspose(4, 3, strides=2, padding="same")(x))
    assert model_forward_flops(s1) == model_forward_flops(s2) == 2 * 9 * 16 * 4 * 64
    conv = keras.Model(x, layers.Conv2D(4, 3, strides=2, padding="same")(x))
    assert model_forward_flops(conv) == 2 * 9 * 16 * 4 * 16


def test_uncountable_layers_fail_loudly_and_eval_gives_none():
    class Odd(layers.Layer):
        def build(self, shape):
            self.w = self.add_weight(shape=(shape[-1], 3))

        def call(self, x):
            return x @ self.w

    x = keras.Input((5,))
    model = keras.Model(x, Odd()(x))
    with pytest.raises(UncountedLayerError):
        model_forward_flops(model)
    assert eval_flops_per_image(model) is None
    assert eval_flops_per_image(object()) is None


def test_eval_flops_of_a_keras_backbone_and_an_extractor():
    x = keras.Input((32, 32, 3))
    y = layers.Conv2D(8, 3, padding="same")(x)
    y = layers.GlobalAveragePooling2D()(y)
    net = keras.Model(x, layers.Dense(10)(y))
    expected = 2 * 9 * 3 * 8 * 1024 + 2 * 8 * 10
    assert eval_flops_per_image(net) == expected

    class Extractor:
        network = net

    assert eval_flops_per_image(Extractor()) == expected
