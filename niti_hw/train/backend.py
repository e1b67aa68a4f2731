"""The one protocol every training backend implements, and the factory that loads one by name
(the names, and the modules they live in, are in `backend_names`).

A backend trains the NITI network batch by batch and evaluates it. `golden` is the reference
(`IntegerRun`: the golden model itself); other backends (the datapath model `sim`, the GPU path
`torch`) must produce the same integers. Backends are imported only when asked for, so a build
without an optional part, or without its extra, still runs the others.

A backend may also define `write_report(out_dir: Path, epoch: int) -> None`: the trainer calls it
after every epoch (after the checkpoint), so a backend can write its own per-run outputs (the
`sim` backend writes its cycle and energy report there).
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from ..extras import EXTRA_PACKAGES
from .backend_names import BACKEND_EXTRAS, BACKENDS
from .build import BuiltNetwork
from .config import TrainConfig
from .prepared import PreparedData


@runtime_checkable
class Backend(Protocol):
    """One run of NITI training on some engine; `label` names its rows in metrics.csv."""

    label: str

    def train_batch(self, index: np.ndarray, epoch: int) -> tuple[float, int]:
        """Train on the training images at `index`; return (sum of losses, correct predictions)."""

    def evaluate(self, images: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
        """Mean loss and accuracy on int8 images, without disturbing training state."""

    def state_arrays(self) -> dict[str, np.ndarray]:
        """Everything needed to resume bit for bit, as named integer arrays."""

    def load_state_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        """Load `state_arrays()` of an earlier run; check everything before changing anything."""


class BackendFactory(Protocol):
    def __call__(self, built: BuiltNetwork, data: PreparedData,
                 config: TrainConfig) -> Backend: ...


def backend_factory(name: str) -> BackendFactory:
    """The class registered as `name`; a clear ValueError when it is unknown or unavailable."""
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}; valid backends: {', '.join(BACKENDS)}")
    module_name, class_name = BACKENDS[name].split(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        missing = (error.name or "").split(".")[0]
        extra = BACKEND_EXTRAS.get(name)
        if extra and missing in EXTRA_PACKAGES[extra]:
            raise ValueError(f"backend {name!r} needs the {extra} extra: "
                             f"pip install 'niti-hw[{extra}]'") from None
        if error.name == module_name:
            raise ValueError(f"backend {name!r} is not available in this build") from None
        raise
    return getattr(module, class_name)


def write_reports(runs, out_dir: Path, epoch: int) -> None:
    """Let each backend that writes its own outputs do so (see the module docstring)."""
    for run in runs:
        hook = getattr(run, "write_report", None)
        if hook is not None:
            hook(Path(out_dir), epoch)
