"""On-disk cache of parsed arrays: one `.npz` per dataset, written atomically, rebuilt if bad."""

from __future__ import annotations

import os
import warnings
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import numpy as np

from ..atomic_write import atomic_write

T = TypeVar("T")

KEY_FIELD = "_source_key"
"""Array in each cache file naming the source it was parsed from; a mismatch means stale."""


def default_cache_dir() -> Path:
    """`$NITI_HW_CACHE`, else `~/.cache/niti-hw`."""
    return Path(os.environ.get("NITI_HW_CACHE") or Path.home() / ".cache" / "niti-hw")


def load_or_build(
    path: Path,
    key: str,
    build: Callable[[], dict[str, np.ndarray]],
    convert: Callable[[dict[str, np.ndarray]], T],
) -> T:
    """Return `convert(arrays)` from the cache at `path`, or from `build()` and then cache them.

    `convert` validates: if it raises ValueError on cached arrays, the cache is treated as
    corrupt and rebuilt. A cache parsed from another source (`key` differs) is rebuilt silently.
    """
    cached = _load(path, key)
    if cached is not None:
        try:
            return convert(cached)
        except ValueError as error:
            _warn_corrupt(path, error)
    arrays = build()
    result = convert(arrays)
    _save_atomic(path, {**arrays, KEY_FIELD: np.array(key)})
    return result


def _load(path: Path, key: str) -> dict[str, np.ndarray] | None:
    """All arrays of the cache file when it exists, reads cleanly and matches `key`; else None."""
    if not path.exists():
        return None
    try:
        with path.open("rb") as file:  # our handle: np.load leaks its own when the zip is bad
            npz = np.load(file, allow_pickle=False)
            if not isinstance(npz, np.lib.npyio.NpzFile):
                raise ValueError("not an .npz archive")
            arrays = {name: npz[name] for name in npz.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as error:
        _warn_corrupt(path, error)
        return None
    if str(arrays.pop(KEY_FIELD, "")) != key:
        return None
    return arrays


def _save_atomic(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write to a temporary file beside `path`, then rename: readers never see half a file.

    The cache only saves time, so failing to write it warns instead of failing the load.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(path) as tmp, tmp.open("wb") as file:
            np.savez(file, **arrays)
            file.flush()
            os.fsync(file.fileno())
    except OSError as error:
        _warn_unwritable(error)


def _warn_corrupt(path: Path, error: Exception) -> None:
    warnings.warn(f"ignoring corrupt cache {path} ({error}); rebuilding it", stacklevel=2)


def _warn_unwritable(error: OSError) -> None:
    warnings.warn(f"cache not saved ({error}); continuing without it", stacklevel=2)
