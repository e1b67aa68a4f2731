"""Tiling of a GEMM for the output-stationary array: cut into operand beats, reassemble results.

The host side of the SystolicArray tile protocol; the cost model counts the same tiles.

The array computes rows x cols output tiles; A is zero-padded to whole row blocks and B to whole
column blocks, tiles go row block by row block, and each tile is K beats (A[:, k], B[k, :]) with
`last` on the final one. Each tile comes back as `rows` result rows, `last` on the final one.
"""

from __future__ import annotations

import numpy as np

from niti_hw.params import HardwareParams


def check_gemm(a: np.ndarray, b: np.ndarray, params: HardwareParams) -> None:
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[0] or a.shape[1] == 0:
        raise ValueError(f"need A (M x K) and B (K x N) with K >= 1; got {a.shape} and {b.shape}")
    if a.shape[1] > params.max_k:
        raise ValueError(f"K must be at most {params.max_k} for a {params.acc_bits}-bit "
                         f"accumulator; got K={a.shape[1]}")


def tile_grid(m: int, n: int, params: HardwareParams) -> list[tuple[int, int]]:
    """(row offset, column offset) of each output tile, in streaming order."""
    return [(i, j) for i in range(0, m, params.rows) for j in range(0, n, params.cols)]


def operand_beats(a: np.ndarray, b: np.ndarray, params: HardwareParams) -> list[dict]:
    """Payload dicts (operand_layout) for the whole GEMM, tile after tile."""
    check_gemm(a, b, params)
    m, k = a.shape
    n = b.shape[1]
    beats = []
    for i0, j0 in tile_grid(m, n, params):
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


def assemble(rows: list[list[int]], m: int, n: int, params: HardwareParams) -> np.ndarray:
    """Crop and place the drained result rows (rows of `cols` ints, tile after tile) into C."""
    grid = tile_grid(m, n, params)
    expected = len(grid) * params.rows
    if len(rows) != expected:
        raise ValueError(f"expected {expected} result rows for a {m} x {n} output; got {len(rows)}")
    c = np.zeros((m, n), dtype=np.int64)
    for t, (i0, j0) in enumerate(grid):
        block = np.asarray(rows[t * params.rows:(t + 1) * params.rows], dtype=np.int64)
        h, w = min(params.rows, m - i0), min(params.cols, n - j0)
        c[i0:i0 + h, j0:j0 + w] = block[:h, :w]
    return c
