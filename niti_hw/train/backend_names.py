"""The names of the training backends and where each lives, apart from the Backend protocol, so
that TrainConfig can check a name without importing the machinery that runs one."""

from __future__ import annotations

BACKENDS = {
    "golden": "niti_hw.train.integer_run:IntegerRun",
    "sim": "niti_hw.train.sim_backend:SimBackend",
    "torch": "niti_hw.train.torch_backend:TorchBackend",
    "program": "niti_hw.train.program_backend:ProgramBackend",
}
"""Backend name -> `module:class`, imported lazily by `niti_hw.train.backend.backend_factory`."""

BACKEND_EXTRAS = {"torch": "torch"}
"""Backends that need an optional extra, and which one."""
