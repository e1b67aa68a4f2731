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
  layer's first step has no prediction and takes the whole-tensor flow once. `exponent_headroom`
  bits added to the prediction trade resolution for fewer saturated values.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from niti_hw.golden import bitwidth
from niti_hw.golden.numbers import narrowing_shift
from niti_hw.params import EXPONENTS

__all__ = ["EXPONENTS", "beyond_range", "narrow_per_tile", "tile_bitwidths"]


_STEPS = np.array([1 << (b - 1) for b in range(1, 34)], dtype=np.int64)
"""The magnitudes where golden's B steps up (B(2**(b-1)) = b): B of many maxima by one lookup."""
assert all(bitwidth(np.array([t])) == b and bitwidth(np.array([t - 1])) == b - 1
           for b, t in enumerate(_STEPS.tolist(), start=1))


def _tiles(x2d: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """(tiles, rows*cols): each rows x cols output tile in drain order, edges padded with zeros."""
    m, n = x2d.shape
    tm, tn = -(-m // rows), -(-n // cols)
    padded = np.zeros((tm * rows, tn * cols), dtype=x2d.dtype)
    padded[:m, :n] = x2d
    return padded.reshape(tm, rows, tn, cols).transpose(0, 2, 1, 3).reshape(tm * tn, rows * cols)


def _untile(tiles: np.ndarray, shape: tuple[int, int], rows: int, cols: int) -> np.ndarray:
    m, n = shape
    tm, tn = -(-m // rows), -(-n // cols)
    grid = tiles.reshape(tm, tn, rows, cols).transpose(0, 2, 1, 3).reshape(tm * rows, tn * cols)
    return grid[:m, :n]


def tile_bitwidths(x2d: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """B of every output tile (drain order), as the RTL detector sees a tile."""
    maxima = np.abs(_tiles(x2d, rows, cols).astype(np.int64)).max(axis=1)
    return np.searchsorted(_STEPS, maxima, side="right")


def narrow_per_tile(x2d: np.ndarray, rows: int, cols: int, keep_bits: int,
                    round_fn: Callable[[np.ndarray, int], np.ndarray]) -> tuple[np.ndarray, int]:
    """Round each tile by k_t = max(0, B_t - keep_bits), then every tile by k_max - k_t.

    `round_fn(values, k)` is the golden R(values, k, mode) of the tensor's kind. Tiles sharing a
    shift are rounded together, tile after tile in drain order, each in row-major order (the order
    LFSR lanes are drawn in). Returns (int8 values, k_max).
    """
    tiles = _tiles(x2d, rows, cols)
    tile_k = narrowing_shift(tile_bitwidths(x2d, rows, cols), keep_bits)
    k_max = int(tile_k.max(initial=0))
    values = np.empty(tiles.shape, dtype=np.int8)
    shifts = np.unique(tile_k).tolist()
    for k in shifts:
        chosen = tile_k == k
        values[chosen] = round_fn(tiles[chosen], k)
    for k in shifts:
        if k < k_max:
            chosen = tile_k == k
            values[chosen] = round_fn(values[chosen], k_max - k)
    return _untile(values, x2d.shape, rows, cols), k_max


def beyond_range(x: np.ndarray, k: int, limit: int) -> int:
    """How many values still exceed the int8 range after a shift by k: they saturate."""
    return int(np.count_nonzero((np.abs(x.astype(np.int64)) >> k) > limit))
