"""A GEMM as the output-stationary array computes it: each output's accumulator adds its products
in k order (k = 0, 1, ..., K-1) and saturates at +-(2**(acc_bits-1) - 1) after every addition.

Only outputs that could reach the limit need the sequential model. Three bounds on every partial
sum, each tighter and dearer, clear the others: K * max|a| * max|b|; the sum of |a||b| per output;
and, with K cut into blocks, |sum before the block| + the block's sum of |a||b|, for every block
(a sum of products of random sign grows like sqrt(K), the plain bound like K). An output cleared
by a bound is the exact product (from the golden GEMM engine). The rest are stepped through k, all
at once in numpy.
"""

from __future__ import annotations

import numpy as np

from niti_hw.golden import int8_matmul

CHUNK_OPERANDS = 1 << 22
"""Operand pairs gathered at once for the outputs that may saturate (bounds memory to ~16 MB)."""
BLOCK_MIN, BLOCKS_MAX = 64, 128
"""K blocks of the block bound: at least 64 terms each, at most 128 blocks per GEMM."""


def accumulator_limit(acc_bits: int) -> int:
    """Largest magnitude a signed `acc_bits` accumulator holds (symmetric, as every narrowing)."""
    return 2 ** (acc_bits - 1) - 1


def saturating_matmul(a: np.ndarray, b: np.ndarray, acc_bits: int,
                      engine: str | None = None) -> tuple[np.ndarray, int]:
    """(A @ B with a saturating `acc_bits` accumulator, how many outputs saturation changed).

    At 32 bits nothing can saturate (the golden GEMM refuses any K where int32 could), so this is
    the golden product itself.
    """
    exact = int8_matmul(a, b, engine=engine)
    if acc_bits >= 32:
        return exact, 0
    limit = accumulator_limit(acc_bits)
    if a.shape[1] * _largest(a) * _largest(b) <= limit:
        return exact, 0
    bound = int8_matmul(np.abs(a), np.abs(b), engine=engine)
    risky = bound > limit
    if risky.any():
        risky &= ~_clear_by_blocks(a, b, limit, engine)
    rows, cols = np.nonzero(risky)
    if rows.size == 0:
        return exact, 0
    result = exact.copy()
    step = max(1, CHUNK_OPERANDS // a.shape[1])
    for start in range(0, rows.size, step):
        r, c = rows[start:start + step], cols[start:start + step]
        result[r, c] = clamped_sums(a[r].T, b[:, c], limit)
    return result, int(np.count_nonzero(result != exact))


def clamped_sums(a_cols: np.ndarray, b_cols: np.ndarray, limit: int) -> np.ndarray:
    """For each column j: acc = 0; for k in order: acc = clip(acc + a[k, j] * b[k, j], +-limit)."""
    a16, b16 = a_cols.astype(np.int16), b_cols.astype(np.int16)  # |product| <= 127**2 fits
    acc = np.zeros(a16.shape[1], dtype=np.int32)
    for a_k, b_k in zip(a16, b16):
        acc += a_k * b_k
        np.minimum(acc, limit, out=acc)
        np.maximum(acc, -limit, out=acc)
    return acc


def _clear_by_blocks(a: np.ndarray, b: np.ndarray, limit: int, engine: str | None) -> np.ndarray:
    """Outputs whose partial sums provably stay within the limit, judged block by block of k."""
    k = a.shape[1]
    size = max(BLOCK_MIN, -(-k // BLOCKS_MAX))
    before = np.zeros((a.shape[0], b.shape[1]), dtype=np.int64)
    clear = np.ones(before.shape, dtype=bool)
    for start in range(0, k, size):
        part = slice(start, start + size)
        reach = int8_matmul(np.abs(a[:, part]), np.abs(b[part]), engine=engine)
        clear &= np.abs(before) + reach <= limit
        before += int8_matmul(a[:, part], b[part], engine=engine)
    return clear


def _largest(x: np.ndarray) -> int:
    return max(abs(int(x.min())), abs(int(x.max()))) if x.size else 0
