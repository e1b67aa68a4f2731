"""Replace a file whole or not at all, and blame the file the user named when that fails.

Everything niti-hw writes (reports, checkpoints, metrics, plots, the data cache) goes through a
temporary file beside the target, renamed over it at the end, so a crash or a full disk never
leaves half a file. The temporary is an implementation detail: an error names the target.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_write(path: Path, name: str | None = None) -> Iterator[Path]:
    """Yield a temporary path to write; it becomes `path` when the block ends without error.

    The temporary keeps `path`'s suffix (matplotlib and pandas choose the format by it) and is
    removed whatever happens. An OSError is raised again as one that names `name` (default: the
    path itself), never the temporary.
    """
    path = Path(path)
    shown = name or str(path)
    try:
        descriptor, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.",
                                           suffix=f".tmp{path.suffix}")
    except OSError as error:
        raise OSError(f"{shown}: no file can be made in its folder {path.parent} "
                      f"({_reason(error)})") from error
    os.close(descriptor)
    tmp = Path(tmp)
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # as a plain open() would make it, not mkstemp's 0600
        yield tmp
        os.replace(tmp, path)
    except OSError as error:
        raise OSError(f"{shown}: could not be written ({_reason(error)})") from error
    finally:
        tmp.unlink(missing_ok=True)


def _reason(error: OSError) -> str:
    """What the system said, without the file name it said it about."""
    return error.strerror or str(error)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
