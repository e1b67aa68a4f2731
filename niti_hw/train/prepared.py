"""Turn a uint8 dataset into int8 once (SPEC: Initialisation and data), and fix the data order."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..data import Dataset
from ..golden import pixel_mean, quantise_pixels


@dataclass(frozen=True)
class PreparedData:
    """int8 images (NHWC) with one exponent, labels, and the integer mean that centred them."""

    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    exp: int
    mean: int
    classes: int
    name: str

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.train_images.shape[1:])


def prepare(dataset: Dataset, mean: int | None = None) -> PreparedData:
    """Quantise both splits around the training images' mean, or around `mean` when given (a
    saved run evaluated on new data keeps the mean it was trained with)."""
    if mean is None:
        mean = pixel_mean(dataset.train_images)
    train = quantise_pixels(dataset.train_images, mean)
    test = quantise_pixels(dataset.test_images, mean)
    return PreparedData(train.values, dataset.train_labels, test.values, dataset.test_labels,
                        train.exp, mean, dataset.classes, dataset.name)


def epoch_order(seed: int, epoch: int, count: int) -> np.ndarray:
    """The shuffled sample order of one epoch, a pure function of (seed, epoch): resumable."""
    return np.random.default_rng([seed, epoch]).permutation(count)


def batches(order: np.ndarray, batch_size: int):
    for start in range(0, len(order), batch_size):
        yield order[start : start + batch_size]
