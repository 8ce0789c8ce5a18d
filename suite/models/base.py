"""What the one trainer needs from a model family."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras

from suite.models.conditioning import one_hot_labels

# Averages gradients across replicas inside a compiled step (identity on one worker).
GradientReducer = Callable[[list[Any]], list[Any]]


class GenerativeModel(keras.Model):
    """A GAN or VAE: its networks, optimisers, one training step and a sampler.

    Subclasses set `loss_names` and `pixel_range` (what the data must be scaled
    to) and implement `train_batch` and `generate`.
    """

    loss_names: tuple[str, ...] = ()
    pixel_range: tuple[float, float] = (0.0, 1.0)

    def __init__(self, latent_dim: int, num_classes: int, seed: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.latent_dim = latent_dim
        self.num_classes = num_classes
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

    def train_batch(self, images, labels, reduce: GradientReducer) -> dict[str, Any]:
        raise NotImplementedError

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
