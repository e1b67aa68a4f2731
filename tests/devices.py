"""The devices the torch tests run on: the CPU always, CUDA when PyTorch sees a GPU.

The same tests run unchanged on a CUDA machine; there the `cuda` cases run instead of skipping.
`NITI_TEST_DEVICES=cuda` (comma-separated) restricts the list, e.g. for `sw/gpu_check.sh`.
"""

import os

import pytest

ALL_DEVICES = ("cpu", "cuda")


def selected_devices():
    wanted = os.environ.get("NITI_TEST_DEVICES", ",".join(ALL_DEVICES)).split(",")
    return [name for name in ALL_DEVICES if name in wanted]


def device_params():
    """pytest params, one per device, each skipped when that device is absent."""
    torch = pytest.importorskip("torch", reason="the torch backend needs the 'torch' extra")
    return [pytest.param(name, marks=pytest.mark.skipif(
        name == "cuda" and not torch.cuda.is_available(), reason="no CUDA GPU here"))
        for name in selected_devices()]
