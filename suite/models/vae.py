"""VAE and conditional VAE: Gaussian encoder, reparameterisation, single-sample ELBO.

Pixels in [0, 1] are scored with a Bernoulli (sigmoid cross-entropy) likelihood
as in the TensorFlow CVAE tutorial; the KL term is analytic.
"""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import ops

from suite.models.base import GenerativeModel, build_adam
from suite.models.conditioning import condition_image, condition_latent
from suite.models.networks import NetSpec, build_encoder, build_generator
from suite.store import schema


class VAE(GenerativeModel):
    loss_names = (schema.ELBO, schema.LOSS_RECON, schema.LOSS_KL)
    pixel_range = (0.0, 1.0)

    def __init__(self, spec: NetSpec, lr: float, seed: int, **kwargs) -> None:
        super().__init__(spec.latent_dim, spec.num_classes, seed, spec.precision, **kwargs)
        self.encoder = build_encoder(spec)
        self.decoder = build_generator(spec, output_activation=None, name="decoder")
        self.optimizer_ = build_adam(lr, spec.beta1, spec.precision)

    @property
    def networks(self) -> dict[str, keras.Model]:
        return {"encoder": self.encoder, "decoder": self.decoder}

    @property
    def optimizers(self) -> list[keras.optimizers.Optimizer]:
        return [self.optimizer_]

    def optimizer_targets(self):
        return [(self.optimizer_, self.encoder.trainable_variables
                 + self.decoder.trainable_variables)]

    def negative_elbo_terms(self, images, labels, training: bool):
        """Per-example reconstruction and KL terms of the single-sample ELBO."""
        one_hot = self.one_hot(labels)
        stats = self.encoder(condition_image(images, one_hot), training=training)
        mean, logvar = ops.split(stats, 2, axis=-1)
        eps = keras.random.normal(ops.shape(mean), seed=self.noise_seed)
        z = mean + ops.exp(0.5 * logvar) * eps
        logits = self.decoder(condition_latent(z, one_hot), training=training)
        recon = ops.sum(ops.binary_crossentropy(images, logits, from_logits=True), axis=(1, 2, 3))
        kl = -0.5 * ops.sum(1.0 + logvar - ops.square(mean) - ops.exp(logvar), axis=-1)
        return recon, kl

    def compute_gradients(self, images, labels):
        variables = self.encoder.trainable_variables + self.decoder.trainable_variables
        with tf.GradientTape() as tape:
            recon, kl = self.negative_elbo_terms(images, labels, training=True)
            loss = ops.mean(recon + kl)
            scaled = self.optimizer_.scale_loss(loss)
        grads = tape.gradient(scaled, variables)
        return [grads], {"elbo": -loss, "loss_recon": ops.mean(recon), "loss_kl": ops.mean(kl)}

    def generate(self, noise, labels=None):
        z = condition_latent(noise, self.one_hot(labels))
        return ops.sigmoid(self.decoder(z, training=False))


def build_vae(spec: NetSpec, lr: float, seed: int) -> VAE:
    return VAE(spec, lr, seed, name="cvae" if spec.num_classes else "vae")
