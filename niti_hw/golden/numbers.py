"""Integer number rules of SPEC.md: the int8 range, saturation, input checks and B(V)."""

from __future__ import annotations

import numpy as np

INT8_MAX = 127
"""Largest int8 magnitude; -128 never appears (every narrowing saturates symmetrically)."""

INT32_SAFE_K = 133_143
"""SPEC's reduction limit: any K below it keeps K * 127**2 < 2**31 (with a small margin)."""

MAX_SHIFT = 32
"""Largest shift `shift_round` accepts: B(int32) <= 32."""


def as_int_array(x, name: str = "x") -> np.ndarray:
    """Return `x` as a numpy integer array, refusing floats and bools (SPEC: no float in training)."""
    array = np.asarray(x)
    if array.dtype == np.bool_ or not np.issubdtype(array.dtype, np.integer):
        raise TypeError(
            f"{name} must be an integer array (int8/int16/int32/int64); got dtype {array.dtype}. "
            "NITI admits no float or bool values in the training path: quantise data first."
        )
    return array


def check_int8_range(x: np.ndarray, name: str) -> None:
    """Refuse values outside [-127, 127]: the int32-safety bound of the GEMM relies on it."""
    if x.size and (int(x.min()) < -INT8_MAX or int(x.max()) > INT8_MAX):
        raise ValueError(
            f"{name} must hold int8 values in [-127, 127]; got range "
            f"[{int(x.min())}, {int(x.max())}]. Saturate or round it with shift_round first."
        )


def check_shift(k, name: str = "k") -> int:
    """Return the shift as a Python int, refusing anything outside 0..32."""
    if isinstance(k, (bool, np.bool_)) or not isinstance(k, (int, np.integer)):
        raise TypeError(f"shift {name} must be an integer in 0..{MAX_SHIFT}; got {k!r}")
    k = int(k)
    if not 0 <= k <= MAX_SHIFT:
        raise ValueError(f"shift {name} must be in 0..{MAX_SHIFT}; got {k}")
    return k


def saturate(x: np.ndarray, limit: int = INT8_MAX) -> np.ndarray:
    """Clip to the symmetric range [-limit, limit], keeping the dtype of `x`."""
    return np.clip(x, -limit, limit)


def saturate_int8(x: np.ndarray) -> np.ndarray:
    """Clip to [-127, 127] and store as int8."""
    return np.clip(x, -INT8_MAX, INT8_MAX).astype(np.int8)


def bitwidth(x) -> int:
    """Effective bitwidth B(V) = bit_length(max |v|) over the whole tensor (0 when all zero).

    This is exact at powers of two (B(128) = 8), unlike the reference code's ceil(log2(max)).
    In hardware it is a leading-one detector on the OR of the magnitudes.
    """
    array = as_int_array(x)
    if array.size == 0:
        return 0
    if array.dtype == np.uint64:
        return int(array.max()).bit_length()
    largest = max(abs(int(array.min())), abs(int(array.max())))
    return largest.bit_length()
