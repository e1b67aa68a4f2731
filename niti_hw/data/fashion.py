"""Fashion-MNIST from the gzipped IDX files of Debian's `dataset-fashion-mnist` package."""

from __future__ import annotations

from pathlib import Path

from .dataset import Dataset
from .idx import load_idx_dir

DEFAULT_ROOT = Path("/usr/share/datasets/fashion-mnist")
"""Where `apt-get install dataset-fashion-mnist` puts the four IDX files."""


def load_fashion_mnist(root: str | Path | None = None) -> Dataset:
    """Fashion-MNIST, 60000 train / 10000 test 28x28x1 images of 10 clothing classes.

    `root` overrides the Debian location, e.g. on systems without apt.
    """
    root = Path(root) if root is not None else DEFAULT_ROOT
    try:
        return load_idx_dir(root, name="fashion-mnist", classes=10)
    except FileNotFoundError as error:
        raise FileNotFoundError(
            f"Fashion-MNIST not found: {error}. Install it with "
            "`sudo apt-get install dataset-fashion-mnist` (Debian/Ubuntu), or pass --data-root a "
            "directory holding its four IDX files"
        ) from error
