"""The `Dataset` record every loader returns, and the checks that keep loaders honest."""

from __future__ import annotations

import dataclasses
import operator

import numpy as np


@dataclasses.dataclass(frozen=True, eq=False)
class Dataset:
    """A raw train/test split exactly as stored: uint8 NHWC images and int64 labels in [0, classes).

    No scaling or quantisation happens here, so the integer training path sees the source bytes.
    """

    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    name: str
    classes: int

    def __post_init__(self) -> None:
        for split in ("train", "test"):
            images = getattr(self, f"{split}_images")
            labels = getattr(self, f"{split}_labels")
            where = f"{self.name} {split} split"
            if images.dtype != np.uint8 or images.ndim != 4:
                raise ValueError(
                    f"{where}: expected uint8 images shaped (N, H, W, C), "
                    f"found {images.dtype} shaped {images.shape}"
                )
            if labels.dtype != np.int64 or labels.shape != images.shape[:1]:
                raise ValueError(
                    f"{where}: expected int64 labels shaped ({len(images)},) to match the images, "
                    f"found {labels.dtype} shaped {labels.shape}"
                )
            if labels.size and (int(labels.min()) < 0 or int(labels.max()) >= self.classes):
                raise ValueError(
                    f"{where}: expected labels in [0, {self.classes}), "
                    f"found [{int(labels.min())}, {int(labels.max())}]"
                )

    def head(self, n_train: int | None = None, n_test: int | None = None) -> Dataset:
        """Keep the first n samples of each split (None keeps all), for quick runs."""
        n_train = _count(n_train, "limit_train")
        n_test = _count(n_test, "limit_test")
        return dataclasses.replace(
            self,
            train_images=self.train_images[:n_train],
            train_labels=self.train_labels[:n_train],
            test_images=self.test_images[:n_test],
            test_labels=self.test_labels[:n_test],
        )


def _count(n: int | None, name: str) -> int | None:
    """Accept None or a non-negative integer; a float or negative limit is a caller bug."""
    if n is None:
        return None
    if isinstance(n, bool):
        raise TypeError(f"{name} must be a non-negative integer or None, found {n!r}")
    n = operator.index(n)
    if n < 0:
        raise ValueError(f"{name} must be a non-negative integer or None, found {n}")
    return n
