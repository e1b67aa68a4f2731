"""Tiling of a GEMM for the output-stationary array: cut into operand beats, reassemble results.

The host side of the SystolicArray tile protocol; the cost model counts the same tiles.

The array computes rows x cols output tiles; A is zero-padded to whole row blocks and B to whole
column blocks, tiles go in the order of a `TileWalk` (row block by row block unless told
otherwise), and each tile is K beats (A[:, k], B[k, :]) with `last` on the final one. Each tile
comes back as `rows` result rows, `last` on the final one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from niti_hw.params import HardwareParams


def check_gemm(a: np.ndarray, b: np.ndarray, params: HardwareParams) -> None:
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[0] or a.shape[1] == 0:
        raise ValueError(f"need A (M x K) and B (K x N) with K >= 1; got {a.shape} and {b.shape}")
    if a.shape[1] > params.max_k:
        raise ValueError(f"K must be at most {params.max_k} for a {params.acc_bits}-bit "
                         f"accumulator; got K={a.shape[1]}")


@dataclass(frozen=True)
class TileWalk:
    """The order of a GEMM's output tiles: bands of `band` tile rows, each band cut into blocks of
    `block` tile columns; row-major inside a block, block after block along a band, band after
    band (0: the whole tensor's tile rows or columns). The default is row-major over the whole
    tensor, the RTL's own order; a blocked walk is how the datapath runs a blocked mapping
    (`niti_hw.perf.mapping.tile_walk`) with the same cycles."""

    band: int = 0
    block: int = 0

    def __post_init__(self) -> None:
        for name in ("band", "block"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
                raise ValueError(f"tile walk {name} must be a tile count >= 0 (0: all); "
                                 f"got {value!r}")


ROW_MAJOR = TileWalk()


def tile_grid(m: int, n: int, params: HardwareParams,
              walk: TileWalk = ROW_MAJOR) -> list[tuple[int, int]]:
    """(row offset, column offset) of each output tile, in streaming order."""
    rows, cols = -(-m // params.rows), -(-n // params.cols)
    band, block = walk.band or rows, walk.block or cols
    return [(ti * params.rows, tj * params.cols)
            for b0 in range(0, rows, band) for c0 in range(0, cols, block)
            for ti in range(b0, min(b0 + band, rows)) for tj in range(c0, min(c0 + block, cols))]


def operand_beats(a: np.ndarray, b: np.ndarray, params: HardwareParams,
                  walk: TileWalk = ROW_MAJOR) -> list[dict]:
    """Payload dicts (operand_layout) for the whole GEMM, tile after tile in `walk` order."""
    check_gemm(a, b, params)
    m, k = a.shape
    n = b.shape[1]
    beats = []
    for i0, j0 in tile_grid(m, n, params, walk):
        a_tile = np.zeros((params.rows, k), dtype=np.int64)
        b_tile = np.zeros((k, params.cols), dtype=np.int64)
        a_part = a[i0:i0 + params.rows]
        b_part = b[:, j0:j0 + params.cols]
        a_tile[:a_part.shape[0]] = a_part
        b_tile[:, :b_part.shape[1]] = b_part
        for step in range(k):
            beats.append({"a": a_tile[:, step].tolist(), "b": b_tile[step].tolist(),
                          "last": int(step == k - 1)})
    return beats


def assemble(rows: list[list[int]], m: int, n: int, params: HardwareParams,
             walk: TileWalk = ROW_MAJOR) -> np.ndarray:
    """Crop and place the drained result rows (rows of `cols` ints, tile after tile in `walk`
    order) into C."""
    grid = tile_grid(m, n, params, walk)
    expected = len(grid) * params.rows
    if len(rows) != expected:
        raise ValueError(f"expected {expected} result rows for a {m} x {n} output; got {len(rows)}")
    c = np.zeros((m, n), dtype=np.int64)
    for t, (i0, j0) in enumerate(grid):
        block = np.asarray(rows[t * params.rows:(t + 1) * params.rows], dtype=np.int64)
        h, w = min(params.rows, m - i0), min(params.cols, n - j0)
        c[i0:i0 + h, j0:j0 + w] = block[:h, :w]
    return c
