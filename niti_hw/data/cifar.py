"""CIFAR-10 from a user-supplied copy, in either official layout (python pickles or binary)."""

from __future__ import annotations

import pickle
from collections.abc import Callable
from pathlib import Path

import numpy as np

from .dataset import Dataset

SIDE = 32
PIXELS = 3 * SIDE * SIDE
RECORD_BYTES = 1 + PIXELS
"""Binary layout: one label byte, then the red, green and blue 32x32 planes, row-major."""

CLASSES = 10
TRAIN_BATCHES = 5
DOWNLOAD_HINT = (
    "download cifar-10-python.tar.gz or cifar-10-binary.tar.gz from "
    "https://www.cs.toronto.edu/~kriz/cifar.html and extract it"
)


def load_cifar10(root: str | Path) -> Dataset:
    """CIFAR-10 as 32x32x3 images; `root` is a batches folder or the folder that holds one."""
    folder, suffix, read_batch = _locate(Path(root))
    names = [f"data_batch_{i}{suffix}" for i in range(1, TRAIN_BATCHES + 1)]
    names.append(f"test_batch{suffix}")
    batches = {}
    for name in names:
        path = folder / name
        if not path.is_file():
            raise FileNotFoundError(
                f"{path}: missing CIFAR-10 batch; the folder must hold {', '.join(names)} "
                f"({DOWNLOAD_HINT})"
            )
        batches[name] = read_batch(path)
    sizes = {name: len(labels) for name, (_, labels) in batches.items()}
    if len(set(sizes.values())) != 1:
        raise ValueError(
            f"{folder}: CIFAR-10 batches differ in size {sizes}: expected equal batches "
            "(10000 records each in the real set); a file is truncated or from another copy"
        )
    train, test = list(batches.values())[:-1], batches[names[-1]]
    return Dataset(
        train_images=np.concatenate([images for images, _ in train]),
        train_labels=np.concatenate([labels for _, labels in train]),
        test_images=test[0],
        test_labels=test[1],
        name="cifar10",
        classes=CLASSES,
    )


def _locate(root: Path) -> tuple[Path, str, Callable[[Path], tuple[np.ndarray, np.ndarray]]]:
    """Find the batches folder (root itself or a standard subfolder) and its format."""
    formats = (
        ("cifar-10-batches-py", "", _read_pickle_batch),
        ("cifar-10-batches-bin", ".bin", _read_binary_batch),
    )
    for folder_name, suffix, reader in formats:
        for folder in (root, root / folder_name):
            markers = (folder / f"data_batch_1{suffix}", folder / f"test_batch{suffix}")
            if any(marker.is_file() for marker in markers):
                return folder, suffix, reader
    raise FileNotFoundError(
        f"no CIFAR-10 batches under {root}: expected cifar-10-batches-py/ (data_batch_1..5, "
        "test_batch) or cifar-10-batches-bin/ (data_batch_1.bin..data_batch_5.bin, "
        f"test_batch.bin), given as root itself or inside it; {DOWNLOAD_HINT}"
    )


def _read_binary_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    raw = np.fromfile(path, dtype=np.uint8)
    if raw.size == 0 or raw.size % RECORD_BYTES:
        raise ValueError(
            f"{path}: {raw.size} bytes is not a whole number of {RECORD_BYTES}-byte CIFAR-10 "
            f"records (1 label byte + {PIXELS} pixel bytes; a full batch is 10000 records = "
            f"{10000 * RECORD_BYTES} bytes): the file is truncated or not a binary batch"
        )
    records = raw.reshape(-1, RECORD_BYTES)
    return _to_nhwc(records[:, 1:]), _checked_labels(records[:, 0], path)


def _read_pickle_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    expected = (
        f"expected a pickled dict with b'data' (N, {PIXELS}) uint8 and b'labels' (N integers)"
    )
    try:
        with path.open("rb") as file:
            batch = _ArrayUnpickler(file, encoding="bytes").load()
    except Exception as error:  # a damaged pickle can fail in many ways; all mean the same
        problem = f"{path}: unreadable CIFAR-10 python batch ({error}); {expected}"
        raise ValueError(problem) from error
    if not isinstance(batch, dict):
        found = type(batch).__name__
        raise ValueError(f"{path}: not a CIFAR-10 python batch (found {found}); {expected}")
    data, labels = batch.get(b"data"), batch.get(b"labels")
    if not (
        isinstance(data, np.ndarray)
        and data.dtype == np.uint8
        and data.shape[1:] == (PIXELS,)
        and labels is not None
        and len(labels) == len(data)
    ):
        found = f"data {getattr(data, 'dtype', None)} {getattr(data, 'shape', None)}"
        raise ValueError(f"{path}: not a CIFAR-10 python batch ({found}); {expected}")
    return _to_nhwc(data), _checked_labels(np.asarray(labels), path)


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickler that can only rebuild numpy arrays: loading a data file must not run code."""

    ALLOWED = {
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "_reconstruct"),  # written by numpy 1 (the official files)
        ("numpy._core.multiarray", "_reconstruct"),  # written by numpy 2
        ("numpy._core.numeric", "_frombuffer"),  # numpy 2, pickle protocol 5
        ("_codecs", "encode"),  # bytes in protocol-2 pickles written by Python 3
    }

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}: not part of an array")
        return super().find_class(module, name)


def _to_nhwc(rows: np.ndarray) -> np.ndarray:
    """(N, 3072) planar RGB rows -> contiguous (N, 32, 32, 3)."""
    return np.ascontiguousarray(rows.reshape(-1, 3, SIDE, SIDE).transpose(0, 2, 3, 1))


def _checked_labels(labels: np.ndarray, path: Path) -> np.ndarray:
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"{path}: expected integer labels, found {labels.dtype} {labels.shape}")
    if labels.size and (labels.min() < 0 or labels.max() >= CLASSES):
        raise ValueError(
            f"{path}: expected labels in 0..{CLASSES - 1}, found {labels.min()}..{labels.max()}: "
            "the file is corrupt or not a CIFAR-10 batch"
        )
    return labels.astype(np.int64)
