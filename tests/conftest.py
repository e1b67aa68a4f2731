"""Shared test settings.

Hypothesis runs without per-example deadlines: CI machines are shared and slow enough that a
wall-clock deadline would make correct code fail at random. pytest-xdist runs one worker per core,
so each worker keeps torch to one thread instead of letting two pools fight over two cores.
"""

import os

import pytest
from hypothesis import settings

settings.register_profile("niti", deadline=None, print_blob=True)
settings.load_profile("niti")

if os.environ.get("PYTEST_XDIST_WORKER"):
    try:
        import torch
    except ImportError:
        pass
    else:
        torch.set_num_threads(1)


def pytest_collection_modifyitems(config, items):
    """`long` tests (whole CNN steps on Verilator, minutes each) only when asked for, so that the
    default run stays within CI's time."""
    if os.environ.get("NITI_HW_LONG") == "1":
        return
    skip = pytest.mark.skip(reason="a whole-network step on Verilator: set NITI_HW_LONG=1")
    for item in items:
        if "long" in item.keywords:
            item.add_marker(skip)
