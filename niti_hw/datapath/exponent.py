"""Where the shift k of a narrowing comes from: the whole tensor, each array tile, or a prediction.

- `tensor` (SPEC, the golden model): k from B over the whole int32 tensor. The hardware must hold
  every int32 result until the last one is known (the int32 tensor buffer), then round in a second
  pass.
- `tile` (today's RTL `Datapath`): each rows x cols output tile is rounded as soon as it drains,
  with k_t from that tile's own B. A NITI tensor has one exponent, so the tiles are then brought to
  the largest k of the layer: each tile's int8 values are rounded again by k_max - k_t (the same
  rounding unit, a second pass over an int8 buffer, a quarter of the int32 one). k_max equals the
  whole-tensor k, so only the double rounding of the smaller tiles differs from SPEC. A
  convolution's error is col2im's int32 sum of GEMM outputs, stored whole anyway, so it takes
  its own whole-tensor B.
- `predicted`: k comes from the B that the same layer and phase had at the previous step, so the
  values are rounded while they drain, in one pass, with no int32 buffer. Values that no longer
  fit saturate at +-127 (counted). The detector still measures this step's B for the next one; a
  layer's first step has no prediction and takes the whole-tensor flow once.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from niti_hw.golden import bitwidth
from niti_hw.params import EXPONENTS

__all__ = ["EXPONENTS", "beyond_range", "narrow_per_tile", "tile_bitwidths"]


def _tile_maxima(x2d: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """max |x| of every rows x cols tile (edge tiles padded with zeros), shape (M/rows, N/cols)."""
    m, n = x2d.shape
    tm, tn = -(-m // rows), -(-n // cols)
    padded = np.zeros((tm * rows, tn * cols), dtype=np.int64)
    padded[:m, :n] = np.abs(x2d)
    return padded.reshape(tm, rows, tn, cols).max(axis=(1, 3))


def tile_bitwidths(x2d: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """B of every output tile, each by the golden `bitwidth` (as the RTL detector sees a tile)."""
    maxima = _tile_maxima(x2d, rows, cols)
    values, where = np.unique(maxima, return_inverse=True)
    bits = np.array([bitwidth(np.array([v])) for v in values.tolist()], dtype=np.int64)
    return bits[where].reshape(maxima.shape)


def narrow_per_tile(x2d: np.ndarray, rows: int, cols: int, keep_bits: int,
                    round_fn: Callable[[np.ndarray, int], np.ndarray]) -> tuple[np.ndarray, int]:
    """Round each tile by k_t = max(0, B_t - keep_bits), then every tile by k_max - k_t.

    `round_fn(values, k)` is the golden R(values, k, mode) of the tensor's kind. Tiles are rounded
    grouped by their shift, in row-major element order within a group. Returns (int8 values, k_max).
    """
    m, n = x2d.shape
    tile_k = np.maximum(0, tile_bitwidths(x2d, rows, cols) - keep_bits)
    k_max = int(tile_k.max(initial=0))
    element_k = np.repeat(np.repeat(tile_k, rows, axis=0), cols, axis=1)[:m, :n]
    values = np.empty((m, n), dtype=np.int8)
    for k in np.unique(tile_k).tolist():
        mask = element_k == k
        values[mask] = round_fn(x2d[mask], k)
    for k in np.unique(tile_k).tolist():
        if k < k_max:
            mask = element_k == k
            values[mask] = round_fn(values[mask], k_max - k)
    return values, k_max


def beyond_range(x: np.ndarray, k: int, limit: int) -> int:
    """How many values still exceed the int8 range after a shift by k: they saturate."""
    return int(np.count_nonzero((np.abs(x.astype(np.int64)) >> k) > limit))
