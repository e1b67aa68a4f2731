"""Random stimulus with the corner cases every bench must hit (int8 +-127, int32 extremes, zeros)."""

from __future__ import annotations

import numpy as np

INT8_EXTREMES = np.array([-127, 127, 0, 1, -1])
INT32_EXTREMES = np.array([-2**31, 2**31 - 1, -2**31 + 1, 0, 1, -1, 127, -127, 128, -128, 255, -255])


def int8_matrix(rng: np.random.Generator, shape, kind: str) -> np.ndarray:
    if kind == "zeros":
        return np.zeros(shape, dtype=np.int64)
    if kind == "extremes":
        return rng.choice(INT8_EXTREMES[:2], size=shape)
    if kind == "mixed":
        out = rng.integers(-127, 128, size=shape)
        mask = rng.random(shape) < 0.3
        out[mask] = rng.choice(INT8_EXTREMES, size=int(mask.sum()))
        return out
    return rng.integers(-127, 128, size=shape)


def int32_tensor(rng: np.random.Generator, size: int, kind: str) -> np.ndarray:
    """Values of one tensor; `kind` picks the magnitude profile so every B(V) in 0..32 appears."""
    if kind == "zeros":
        return np.zeros(size, dtype=np.int64)
    if kind == "extremes":
        return rng.choice(INT32_EXTREMES, size=size)
    bits = int(rng.integers(0, 33)) if kind == "random" else int(kind)
    high = 2 ** bits if bits < 32 else 2**31
    out = rng.integers(-high + 1, high, size=size, dtype=np.int64) if bits else np.zeros(size, np.int64)
    if bits == 32 and rng.random() < 0.5:
        out[rng.integers(0, size)] = -2**31
    return out
