"""The golden rounding and LFSR steps compiled with numba into one pass over CPU memory.

R(x, k, mode) as array operations makes ~15 passes over the tensor and as many temporaries
(4-9 ms for a 737,280-element int32 tensor on one thread); one compiled loop reads each element
once and writes its int8 result (0.14 ms). The loops below apply the per-element functions of
`elementwise` (the same ones `shift_round` applies to whole arrays), so there is still one
definition; tests check compiled == eager on random tensors of every width, k and mode.

Compilation is lazy (the first call, ~0.5 s a kernel; cached on disk after). If numba cannot
compile here, one warning says so and the callers run the eager array code instead.
"""

from __future__ import annotations

import functools
import warnings

import numpy as np

from .elementwise import (
    int8_clamp, lfsr_step, nearest_quotient, pseudo_round_up, signed_round, stochastic_round_up,
)
from .numbers import namespace

ENABLED = True
"""False runs the eager array code everywhere (the tests compare both)."""

try:
    import numba
except ImportError:  # pragma: no cover - numba is a dependency; a broken install runs eager
    numba = None


def _jit(function):
    return numba.njit(function, cache=True, nogil=True) if numba else function


_nearest, _pseudo, _stochastic, _step, _clamp, _signed = map(
    _jit, (nearest_quotient, pseudo_round_up, stochastic_round_up, lfsr_step, int8_clamp,
           signed_round))


@_jit
def _round_nearest(x, k, out):
    for i in range(x.size):
        out[i] = _clamp(_nearest(np.int64(x[i]), k))


@_jit
def _round_magnitude(x, k, draws, out):
    """pseudo when `draws` is empty, else stochastic with draws[i] for element i."""
    mask = (1 << k) - 1
    for i in range(x.size):
        value = np.int64(x[i])
        magnitude = abs(value)
        fraction = magnitude & mask
        if draws.size:
            up = _stochastic(fraction, draws[i])
        else:
            up = _pseudo(fraction, k)
        out[i] = _signed(value, magnitude, k, up)


@_jit
def _draw(states, count, k, out):
    """Lane j % L steps for element j, in order; out[j] = low k bits of its new state."""
    mask = (1 << k) - 1
    n_lanes = states.size
    for start in range(0, count, n_lanes):  # one row of lanes at a time: no division per element
        for lane in range(min(n_lanes, count - start)):
            state = _step(states[lane])
            states[lane] = state
            out[start + lane] = state & mask


@functools.cache
def kernels():
    """The compiled kernels, or None (with one warning) when numba cannot build them here."""
    try:
        if numba is None:
            raise ImportError("numba is not installed")
        probe, out = np.array([-5, 5], dtype=np.int32), np.empty(2, dtype=np.int8)
        _round_nearest(probe, 1, out)
        _round_magnitude(probe, 1, np.empty(0, np.int64), out)
        _draw(np.ones(1, np.int64), 1, 1, np.empty(1, np.int64))
    except Exception as error:  # any numba or LLVM failure: slower, never stopped
        warnings.warn(f"numba could not compile the golden rounding kernels ({error}); "
                      "running the eager array code instead (same results, slower)",
                      RuntimeWarning, stacklevel=3)
        return None
    return _round_nearest, _round_magnitude, _draw


def cpu_array(x):
    """x as a flat numpy array sharing memory where it can (numpy arrays, CPU tensors), else
    None: compiled kernels only run on host memory."""
    if isinstance(x, np.ndarray):
        return np.ascontiguousarray(x).reshape(-1)
    if getattr(getattr(x, "device", None), "type", None) == "cpu" and hasattr(x, "numpy"):
        return x.contiguous().numpy().reshape(-1)
    return None


def shift_round(x, k: int, mode: str, draws) -> object | None:
    """R(x, k, mode) for k >= 1 in one compiled pass, as int8 of x's library; None when the
    kernels are off or missing or x is not in host memory (the caller then runs eager code).
    `draws` are the stochastic mode's random bits (a numpy int64 array), else None."""
    flat = cpu_array(x) if ENABLED else None
    found = kernels() if flat is not None else None
    if found is None:
        return None
    round_nearest, round_magnitude, _ = found
    if isinstance(x, np.ndarray):
        out = np.empty(x.shape, dtype=np.int8)
        out_flat = out.reshape(-1)
    else:
        out = x.new_empty(x.shape, dtype=namespace(x).int8)
        out_flat = out.numpy().reshape(-1)
    if mode == "nearest":
        round_nearest(flat, k, out_flat)
    else:
        empty = np.empty(0, np.int64)
        round_magnitude(flat, k, empty if draws is None else draws.reshape(-1), out_flat)
    return out


def draw(states: np.ndarray, count: int, k: int) -> np.ndarray | None:
    """The lanes' next `count` draws in one compiled loop, updating `states` (uint32) in place;
    None when the kernels are off or missing."""
    found = kernels() if ENABLED else None
    if found is None:
        return None
    wide = states.astype(np.int64)
    out = np.empty(count, dtype=np.int64)
    found[2](wide, count, k, out)
    states[:] = wide
    return out
