"""DCGAN and conditional GAN: the TensorFlow DCGAN tutorial's objective and step.

Non-saturating BCE losses, one generator and one discriminator update per batch
from the same noise, Adam for both (the tutorial uses 1e-4 and beta1 0.9; the DCGAN
paper's beta1 0.5 trains much faster). Both networks' gradients come from one
forward pass, so the trainer reduces them together.
"""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import ops

from suite.models.base import GenerativeModel, build_adam
from suite.models.conditioning import condition_image, condition_latent
from suite.models.networks import NetSpec, build_discriminator, build_generator
from suite.store import schema


class GAN(GenerativeModel):
    loss_names = (schema.LOSS_G, schema.LOSS_D)
    pixel_range = (-1.0, 1.0)

    def __init__(self, spec: NetSpec, lr: float, seed: int, **kwargs) -> None:
        super().__init__(spec.latent_dim, spec.num_classes, seed, spec.precision, **kwargs)
        self.generator = build_generator(spec, output_activation="tanh", name="generator")
        self.discriminator = build_discriminator(spec)
        self.g_optimizer = build_adam(lr, spec.beta1, spec.precision)
        self.d_optimizer = build_adam(lr, spec.beta1, spec.precision)

    @property
    def networks(self) -> dict[str, keras.Model]:
        return {"generator": self.generator, "discriminator": self.discriminator}

    @property
    def optimizers(self) -> list[keras.optimizers.Optimizer]:
        return [self.g_optimizer, self.d_optimizer]

    def optimizer_targets(self):
        return [(self.g_optimizer, self.generator.trainable_variables),
                (self.d_optimizer, self.discriminator.trainable_variables)]

    def compute_gradients(self, images, labels):
        batch = ops.shape(images)[0]
        one_hot = self.one_hot(labels)
        noise = keras.random.normal((batch, self.latent_dim), seed=self.noise_seed)
        bce = keras.losses.BinaryCrossentropy(from_logits=True)
        with tf.GradientTape() as g_tape, tf.GradientTape() as d_tape:
            fake = self.generator(condition_latent(noise, one_hot), training=True)
            real_logits = self.discriminator(condition_image(images, one_hot), training=True)
            fake_logits = self.discriminator(condition_image(fake, one_hot), training=True)
            loss_g = bce(ops.ones_like(fake_logits), fake_logits)
            loss_d = (bce(ops.ones_like(real_logits), real_logits)
                      + bce(ops.zeros_like(fake_logits), fake_logits))
            scaled_g = self.g_optimizer.scale_loss(loss_g)
            scaled_d = self.d_optimizer.scale_loss(loss_d)
        g_grads = g_tape.gradient(scaled_g, self.generator.trainable_variables)
        d_grads = d_tape.gradient(scaled_d, self.discriminator.trainable_variables)
        return [g_grads, d_grads], {"loss_g": loss_g, "loss_d": loss_d}

    def generate(self, noise, labels=None):
        z = condition_latent(noise, self.one_hot(labels))
        return self.to_unit_range(self.generator(z, training=False))


def build_gan(spec: NetSpec, lr: float, seed: int) -> GAN:
    return GAN(spec, lr, seed, name="cgan" if spec.num_classes else "dcgan")
