"""What the one trainer needs from a model family."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras

from suite.models.conditioning import one_hot_labels
from suite.models.optimizers import one_replica_optimizer
from suite.models.precision import scaled_optimizer

# Averages tensors across replicas inside a compiled step (identity on one worker). The
# trainer calls it once per step with every gradient and loss: one fused collective.
GradientReducer = Callable[[list[Any]], list[Any]]


def build_adam(lr: float, beta1: float, precision: str) -> keras.optimizers.Optimizer:
    """Adam with the trial's lr and beta1 (the `beta1` axis: 0.9 as the TensorFlow
    tutorials, 0.5 as the DCGAN paper; beta2 and epsilon are Keras' defaults), wrapped
    for loss scaling when `precision` needs it; traced in one process as often as
    trials run there without keeping each trace alive (suite.models.optimizers)."""
    return one_replica_optimizer(
        scaled_optimizer(keras.optimizers.Adam(lr, beta_1=beta1), precision))


class GenerativeModel(keras.Model):
    """A GAN or VAE: its networks, optimisers, one training step and a sampler.

    Subclasses set `loss_names` and `pixel_range` (what the data must be scaled
    to) and implement `compute_gradients` and `generate`. A step is
    `compute_gradients` (per optimiser, of the loss-scaled objective), one
    reduction of all gradients and losses together, then `apply_gradients`.
    """

    loss_names: tuple[str, ...] = ()
    pixel_range: tuple[float, float] = (0.0, 1.0)

    def __init__(self, latent_dim: int, num_classes: int, seed: int, precision: str = "fp32",
                 **kwargs) -> None:
        super().__init__(**kwargs)
        self.latent_dim = latent_dim
        self.num_classes = num_classes
        self.precision = precision
        self.noise_seed = keras.random.SeedGenerator(seed)

    @property
    def networks(self) -> dict[str, keras.Model]:
        raise NotImplementedError

    @property
    def optimizers(self) -> list[keras.optimizers.Optimizer]:
        raise NotImplementedError

    def build_optimizers(self) -> None:
        """Create optimiser slots now, so a checkpoint can be restored before step 1."""
        for optimizer, variables in self.optimizer_targets():
            optimizer.build(variables)

    def optimizer_targets(self) -> list[tuple[keras.optimizers.Optimizer, list]]:
        raise NotImplementedError

    def compute_gradients(self, images, labels) -> tuple[list[list[Any]], dict[str, Any]]:
        """(gradients per `optimizer_targets` entry, float32 losses) of one batch.

        Gradients are of each optimiser's `scale_loss(loss)`: scaled under
        mixed_float16, the plain loss otherwise; the losses returned are unscaled.
        """
        raise NotImplementedError

    def apply_gradients(self, grads: list[list[Any]]) -> None:
        """One optimiser update per `optimizer_targets` entry (a loss-scale optimiser unscales)."""
        for (optimizer, variables), group in zip(self.optimizer_targets(), grads, strict=True):
            optimizer.apply_gradients(zip(group, variables, strict=True))

    def train_batch(self, images, labels, reduce: GradientReducer) -> dict[str, Any]:
        """One step: every network's gradients and the losses go through ONE `reduce` call,
        so data parallelism costs one fused collective per step. Returns reduced losses."""
        grads, losses = self.compute_gradients(images, labels)
        names = list(losses)
        flat = [g for group in grads for g in group]
        reduced = reduce(flat + [losses[n] for n in names])
        groups, start = [], 0
        for group in grads:
            groups.append(reduced[start:start + len(group)])
            start += len(group)
        self.apply_gradients(groups)
        return dict(zip(names, reduced[start:], strict=True))

    def generate(self, noise, labels):
        """Images in [0, 1] for the given noise (and labels when conditional)."""
        raise NotImplementedError

    def one_hot(self, labels):
        """One-hot labels for a conditional model; None when unconditional or unlabelled."""
        if not self.num_classes or labels is None:
            return None
        return one_hot_labels(labels, self.num_classes)

    def param_counts(self) -> dict[str, int]:
        return {name: int(net.count_params()) for name, net in self.networks.items()}

    def to_unit_range(self, images):
        low, high = self.pixel_range
        return (images - low) / (high - low)
