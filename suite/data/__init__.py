"""Datasets: the registry, original-format readers (IDX, CIFAR-10 binary, npz) and the
rules every dataset is held to. May import: common. The public names are re-exported
here (`from suite.data import load_dataset`)."""

from suite.data.catalog import DATASETS, ImageData, check_dataset_name, load_dataset

__all__ = ["DATASETS", "ImageData", "check_dataset_name", "load_dataset"]
