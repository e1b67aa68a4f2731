"""IDX files (the MNIST family's format): a checked reader and the standard four-file layout."""

from __future__ import annotations

import gzip
import math
import struct
import zlib
from pathlib import Path

import numpy as np

from .dataset import Dataset

IDX_DTYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
"""IDX type code -> big-endian element type, as defined by the format."""

IDX_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
"""Standard file names of an IDX dataset directory; each may also carry a `.gz` suffix."""

_GZIP_MAGIC = b"\x1f\x8b"


def read_idx(path: str | Path) -> np.ndarray:
    """Read one IDX file, plain or gzipped (told apart by content, not name).

    The header must agree exactly with the payload length, so a truncated download fails here
    instead of yielding a short or garbled array.
    """
    path = Path(path)
    raw = _read_bytes(path)
    if len(raw) < 4:
        raise ValueError(
            f"{path}: not an IDX file: expected a 4-byte header, found {len(raw)} bytes"
        )
    code, ndim = raw[2], raw[3]
    if raw[:2] != b"\0\0" or code not in IDX_DTYPES or ndim == 0:
        raise ValueError(
            f"{path}: bad IDX magic number 0x{raw[:4].hex()}: expected 0x0000, a type code "
            f"({', '.join(f'0x{c:02x}' for c in IDX_DTYPES)}) and a dimension count >= 1, "
            "e.g. 0x00000803 for uint8 images"
        )
    start = 4 + 4 * ndim
    if len(raw) < start:
        raise ValueError(
            f"{path}: IDX header truncated: {ndim} dimensions need {start} header bytes, "
            f"found {len(raw)}"
        )
    dims = struct.unpack(f">{ndim}I", raw[4:start])
    dtype = IDX_DTYPES[code]
    expected = math.prod(dims) * dtype.itemsize
    found = len(raw) - start
    if found != expected:
        problem = "truncated" if found < expected else "has trailing bytes"
        raise ValueError(
            f"{path}: IDX payload {problem}: header shape {dims} of {dtype.name} needs "
            f"{expected} bytes, found {found}; re-download or re-extract the file"
        )
    return np.frombuffer(raw, dtype, offset=start).reshape(dims).astype(dtype.newbyteorder("="))


def _read_bytes(path: Path) -> bytes:
    """Whole file contents, gunzipped when the content starts with the gzip magic."""
    with path.open("rb") as file:
        gzipped = file.read(2) == _GZIP_MAGIC
    if not gzipped:
        return path.read_bytes()
    try:
        with gzip.open(path, "rb") as file:
            return file.read()
    except (EOFError, gzip.BadGzipFile, zlib.error) as error:
        raise ValueError(
            f"{path}: corrupt gzip stream ({error}): expected a complete gzip file; "
            "re-download it"
        ) from error


def find_idx_file(root: Path, stem: str) -> Path:
    """`root/stem` or `root/stem.gz`, whichever exists."""
    for candidate in (root / stem, root / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(
        f"{root}: missing {stem} (or {stem}.gz); an IDX dataset directory holds "
        f"{', '.join(IDX_FILES.values())}, each plain or gzipped"
    )


def load_idx_dir(root: str | Path, name: str = "idx", classes: int | None = None) -> Dataset:
    """Load the standard four IDX files from `root`; `classes` defaults to the largest label + 1."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such directory (expected the four IDX files there)")
    paths = {key: find_idx_file(root, stem) for key, stem in IDX_FILES.items()}
    arrays = {}
    for split in ("train", "test"):
        images_path, labels_path = paths[f"{split}_images"], paths[f"{split}_labels"]
        images = _as_images(read_idx(images_path), images_path)
        labels = _as_labels(read_idx(labels_path), labels_path)
        if len(images) != len(labels):
            raise ValueError(
                f"{images_path} holds {len(images)} images but {labels_path} holds "
                f"{len(labels)} labels: expected one label per image"
            )
        arrays[f"{split}_images"], arrays[f"{split}_labels"] = images, labels
    if classes is None:
        labels = (arrays["train_labels"], arrays["test_labels"])
        classes = max((int(a.max()) for a in labels if a.size), default=-1) + 1
    return Dataset(**arrays, name=name, classes=classes)


def _as_images(array: np.ndarray, path: Path) -> np.ndarray:
    """uint8 (N, H, W) or (N, H, W, C) -> NHWC."""
    if array.dtype != np.uint8 or array.ndim not in (3, 4):
        raise ValueError(
            f"{path}: expected uint8 images shaped (N, H, W) or (N, H, W, C), "
            f"found {array.dtype} shaped {array.shape}"
        )
    return array[..., np.newaxis] if array.ndim == 3 else array


def _as_labels(array: np.ndarray, path: Path) -> np.ndarray:
    """Integer (N,) -> int64."""
    if array.ndim != 1 or not np.issubdtype(array.dtype, np.integer):
        raise ValueError(
            f"{path}: expected integer labels shaped (N,), found {array.dtype} shaped {array.shape}"
        )
    return array.astype(np.int64)
