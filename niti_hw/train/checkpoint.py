"""One file holds a run: integer weights, LFSR states, epoch and settings (and the fp32 twin).

Written atomically (temporary file in the same folder, then rename), so a crash never leaves a
half-written checkpoint; read with checks, so a damaged or foreign file is refused clearly.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np

from ..atomic_write import atomic_write

FORMAT = "niti-hw-checkpoint/1"


def save_checkpoint(path: Path, meta: dict, arrays: dict[str, np.ndarray]) -> None:
    path = Path(path)
    header = json.dumps({"format": FORMAT, **meta})
    with atomic_write(path) as tmp, tmp.open("wb") as handle:
        np.savez(handle, __meta__=np.array(header), **arrays)


def load_checkpoint(path: Path) -> tuple[dict, dict[str, np.ndarray]]:
    """Return (meta, arrays); ValueError says what is wrong with a damaged or foreign file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        with path.open("rb") as handle:  # our handle: np.load leaks its own on a bad zip
            archive = np.load(handle, allow_pickle=False)
            if not isinstance(archive, np.lib.npyio.NpzFile):
                raise ValueError("not an .npz archive")
            arrays = {name: archive[name] for name in archive.files}
        meta = json.loads(str(arrays.pop("__meta__")))
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        # numpy's own messages (e.g. its allow_pickle hint) would mislead here: never unpickle.
        raise ValueError(
            f"{path} is damaged or not a niti-hw checkpoint (not a readable .npz archive with "
            "its settings); nothing was changed"
        ) from None
    if meta.get("format") != FORMAT:
        raise ValueError(f"{path} has format {meta.get('format')!r}; expected {FORMAT!r}")
    return meta, arrays
