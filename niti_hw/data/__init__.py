"""Raw datasets for NITI training, read only from local files (never downloaded at run time).

`load_dataset(name)` returns a `Dataset` of uint8 NHWC images and int64 labels.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from .cifar import load_cifar10
from .dataset import Dataset
from .fashion import load_fashion_mnist
from .idx import load_idx_dir, read_idx
from .mnist import load_mnist

__all__ = ["DATASETS", "Dataset", "load_dataset", "read_idx"]

Root = str | Path | None


def _require_root(name: str, root: Root, what: str) -> Path:
    if root is None:
        raise ValueError(f"dataset {name!r} needs its folder: pass --data-root {what}")
    return Path(root)


_LOADERS: dict[str, Callable[[Root, Root], Dataset]] = {
    "mnist": load_mnist,
    "fashion-mnist": lambda root, cache_dir: load_fashion_mnist(root),
    "idx": lambda root, cache_dir: load_idx_dir(
        _require_root("idx", root, "(a directory holding the four standard IDX files)")
    ),
    "cifar10": lambda root, cache_dir: load_cifar10(
        _require_root("cifar10", root, "(cifar-10-batches-py/-bin or the folder holding it)")
    ),
}

DATASETS = tuple(_LOADERS)
"""Valid dataset names; the first is the default."""


def load_dataset(
    name: str = "mnist",
    root: Root = None,
    cache_dir: Root = None,
    *,
    limit_train: int | None = None,
    limit_test: int | None = None,
) -> Dataset:
    """Load dataset `name` from local files, keeping the first `limit_*` samples of each split.

    `root` is where the files are: required for `idx` and `cifar10`, an override for `mnist`
    (CSV folder) and `fashion-mnist` (IDX folder). `cache_dir` holds parsed MNIST arrays.
    """
    loader = _LOADERS.get(name)
    if loader is None:
        raise ValueError(f"unknown dataset {name!r}: valid names are {', '.join(DATASETS)}")
    return loader(root, cache_dir).head(limit_train, limit_test)
