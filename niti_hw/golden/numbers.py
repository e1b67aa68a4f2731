"""Integer number rules of SPEC.md: the int8 range, saturation, input checks and B(V).

Every golden function takes numpy arrays or torch tensors alike (the same code, so the GPU path
is the golden model itself): `namespace(x)` is numpy for numpy input, else the array-API view of
the tensor's library, and the code below uses only what both offer.
"""

from __future__ import annotations

import math

import numpy as np

INT8_MAX = 127
"""Largest int8 magnitude; -128 never appears (every narrowing saturates symmetrically)."""

INT32_SAFE_K = 133_143
"""SPEC's reduction limit: any K below it keeps K * 127**2 < 2**31 (with a small margin)."""

MAX_SHIFT = 32
"""Largest shift `shift_round` accepts: B(int32) <= 32."""


_NUMPY_INPUTS = (np.ndarray, np.generic, int, list, tuple)


def namespace(*arrays):
    """The array namespace of the arguments: numpy itself for numpy input (no wrapper cost), the
    array-API view of torch for tensors."""
    if all(isinstance(a, _NUMPY_INPUTS) for a in arrays):
        return np
    from array_api_compat import array_namespace

    try:
        return array_namespace(*(a for a in arrays if not isinstance(a, _NUMPY_INPUTS)))
    except TypeError:  # not an array library: anything numpy can convert (pandas, ...)
        return np


def count(x) -> int:
    """Number of elements (numpy's `size` is a method on torch tensors)."""
    return math.prod(x.shape)


def as_int_array(x, name: str = "x"):
    """Return `x` as an integer array of its own library (numpy unless it is a tensor), refusing
    floats and bools (SPEC: no float in training)."""
    xp = namespace(x)
    array = np.asarray(x) if xp is np else x
    if not xp.isdtype(array.dtype, "integral"):
        raise TypeError(
            f"{name} must be an integer array (int8/int16/int32/int64); got dtype {array.dtype}. "
            "NITI admits no float or bool values in the training path: quantise data first."
        )
    return array


def value_range(x) -> tuple[int, int]:
    """(min, max) of a non-empty array in one pass, walking memory in storage order.

    torch: `aminmax` (one pass, where min and max are two) on the view whose strides are in
    memory order: torch reduces a transposed view 10-40x slower (1 ms against 0.035 ms for a
    (4096, 500) int8 operand). numpy's reductions walk memory order by themselves.
    """
    if isinstance(x, np.ndarray) or not hasattr(x, "aminmax"):
        return int(x.min()), int(x.max())
    if not x.is_contiguous():  # same elements, so the same extremes
        x = x.permute(sorted(range(x.ndim), key=x.stride, reverse=True))
    low, high = x.aminmax()
    return int(low), int(high)


def check_int8_range(x, name: str) -> None:
    """Refuse values outside [-127, 127]: the int32-safety bound of the GEMM relies on it."""
    if not count(x):
        return
    low, high = value_range(x)
    if low < -INT8_MAX or high > INT8_MAX:
        raise ValueError(
            f"{name} must hold int8 values in [-127, 127]; got range "
            f"[{low}, {high}]. Saturate or round it with shift_round first."
        )


def check_shift(k, name: str = "k") -> int:
    """Return the shift as a Python int, refusing anything outside 0..32."""
    if isinstance(k, (bool, np.bool_)) or not isinstance(k, (int, np.integer)):
        raise TypeError(f"shift {name} must be an integer in 0..{MAX_SHIFT}; got {k!r}")
    k = int(k)
    if not 0 <= k <= MAX_SHIFT:
        raise ValueError(f"shift {name} must be in 0..{MAX_SHIFT}; got {k}")
    return k


def signed_limit(bits: int) -> int:
    """Largest magnitude of a symmetric signed `bits`-bit value, 2**(bits-1) - 1 (127 for int8):
    every saturation in NITI is symmetric, so -2**(bits-1) is never produced."""
    return 2 ** (bits - 1) - 1


def saturate(x, limit: int = INT8_MAX):
    """Clip to the symmetric range [-limit, limit], keeping the dtype of `x`."""
    return namespace(x).clip(x, -limit, limit)


def saturate_int8(x):
    """Clip to [-127, 127] and store as int8."""
    xp = namespace(x)
    return xp.astype(xp.clip(x, -INT8_MAX, INT8_MAX), xp.int8)


def narrowing_shift(b, keep_bits: int):
    """SPEC: the right shift that leaves `keep_bits` magnitude bits of a B-bit value, never
    negative (k = max(0, B - 7) for int8). Takes an int or an array of B."""
    if isinstance(b, np.ndarray):
        return np.maximum(b - keep_bits, 0)
    return max(0, int(b) - keep_bits)


def bitwidth(x) -> int:
    """Effective bitwidth B(V) = bit_length(max |v|) over the whole tensor (0 when all zero).

    This is exact at powers of two (B(128) = 8), unlike the reference code's ceil(log2(max)).
    In hardware it is a leading-one detector on the OR of the magnitudes.
    """
    array = as_int_array(x)
    if count(array) == 0:
        return 0
    if array.dtype == np.uint64:
        return int(array.max()).bit_length()
    low, high = value_range(array)
    return max(-low, high).bit_length()
