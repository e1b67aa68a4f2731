"""The study folder: finished points as Parquet files, each written whole, and a lock.

Every batch of finished points becomes one new file under `results/<kind>/`, written to a
temporary name and renamed into place, so a study killed at any instant leaves only whole files
(and perhaps a temporary one, removed at the next start). A point's key is a hash of its kind,
its full configuration and the niti-hw version: a re-run skips every key already stored, and a
new version computes everything again. One study at a time holds the folder's lock (`flock`,
released by the kernel even on kill -9).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import time
from pathlib import Path

import pandas as pd

from niti_hw import __version__

KINDS = ("estimate", "accuracy", "synth")
BASE_COLUMNS = ("key", "kind", "status", "reason", "version", "config")
LOCK_NAME = ".lock"
TMP_PREFIX = ".tmp-"


def point_key(kind: str, config: dict) -> str:
    """Stable across processes and runs: sorted JSON of kind, configuration and version."""
    text = json.dumps({"kind": kind, "config": config, "version": __version__}, sort_keys=True,
                      separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:24]


class Store:
    """Open with `with Store(folder) as store:`; refused while another study holds the folder."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self._lock = None
        self._count = 0

    def __enter__(self) -> "Store":
        self.folder.mkdir(parents=True, exist_ok=True)
        handle = open(self.folder / LOCK_NAME, "a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            owner = handle.read().strip() or "unknown"
            handle.close()
            raise ValueError(f"study folder {self.folder} is in use by another niti-hw "
                             f"explore (pid {owner}); wait for it to finish or give another "
                             "--out") from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        self._lock = handle
        for kind in KINDS:
            for stale in (self.folder / "results" / kind).glob(f"{TMP_PREFIX}*"):
                stale.unlink()  # a write cut short by a kill; its points were never stored
        return self

    def __exit__(self, *exc) -> None:
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    def files(self, kind: str) -> list[Path]:
        """The stored files of `kind`; never a temporary one being written (pathlib's glob
        matches names starting with a dot, and a reader may run while a study writes)."""
        return sorted(path for path in (self.folder / "results" / kind).glob("*.parquet")
                      if not path.name.startswith(TMP_PREFIX))

    def read(self, kind: str) -> pd.DataFrame:
        """Every stored row of `kind`; a damaged file stops everything, in one line."""
        frames = []
        for path in self.files(kind):
            try:
                frame = pd.read_parquet(path)
            except Exception as error:  # pyarrow raises several types for a damaged file
                reason = " ".join(str(error).split())[:120]
                raise ValueError(f"result file {path} is damaged ({reason}); nothing was run: "
                                 "move it out of the study folder and run again (its points are "
                                 "then computed again, nothing else)") from None
            missing = [c for c in BASE_COLUMNS if c not in frame.columns]
            if missing:
                raise ValueError(f"result file {path} lacks column {missing[0]!r}; move it out "
                                 "of the study folder and run again")
            frames.append(frame)
        if not frames:
            return pd.DataFrame(columns=list(BASE_COLUMNS))
        return pd.concat(frames, ignore_index=True)

    def write(self, kind: str, rows: list[dict]) -> Path | None:
        """Store finished rows at once, as one whole new file."""
        if not rows:
            return None
        if self._lock is None:
            raise RuntimeError("the store is written only while its lock is held")
        folder = self.folder / "results" / kind
        folder.mkdir(parents=True, exist_ok=True)
        self._count += 1
        # Names sort in the order written: a point stored twice (--retry-failed) reads as its last
        name = f"{time.time_ns()}-{os.getpid()}-{self._count:06d}.parquet"
        tmp = folder / f"{TMP_PREFIX}{name}"
        frame = pd.DataFrame(rows)
        frame["version"] = __version__
        frame.to_parquet(tmp, index=False)
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, folder / name)
        return folder / name
