"""A GEMM as the output-stationary array computes it: each output's accumulator adds its products
in k order (k = 0, 1, ..., K-1) and saturates at +-(2**(acc_bits-1) - 1) after every addition.

Saturation makes the sum depend on the order, so no BLAS can compute it. A compiled loop
(numba) steps every output through k; its inner loop runs along the longer of M and N, which LLVM
vectorises (about 3 G products/s on one core). Two bounds on every partial sum pick the outputs
that need it: K * max|a| * max|b| for the whole GEMM, then sum |a||b| per output (one more BLAS
product); the rows and columns of the outputs neither clears go through the loop, the rest are
the exact golden product.
"""

from __future__ import annotations

import numba
import numpy as np

from niti_hw.golden import int8_matmul
from niti_hw.golden.numbers import signed_limit


def saturating_matmul(a: np.ndarray, b: np.ndarray, acc_bits: int,
                      engine: str | None = None) -> tuple[np.ndarray, int]:
    """(A @ B with a saturating `acc_bits` accumulator, how many outputs saturation changed).

    At 32 bits nothing can saturate (the golden GEMM refuses any K where int32 could), so this is
    the golden product itself.
    """
    exact = int8_matmul(a, b, engine=engine)
    if acc_bits >= 32:
        return exact, 0
    limit = signed_limit(acc_bits)
    if a.shape[1] * _largest(a) * _largest(b) <= limit:
        return exact, 0
    risky = int8_matmul(np.abs(a), np.abs(b), engine=engine) > limit  # sum |a||b| bounds all
    if not risky.any():
        return exact, 0
    rows, cols = np.flatnonzero(risky.any(axis=1)), np.flatnonzero(risky.any(axis=0))
    result = exact.copy()
    result[np.ix_(rows, cols)] = clamped_matmul(a[rows], b[:, cols], limit)
    return result, int(np.count_nonzero(result != exact))


def clamped_matmul(a: np.ndarray, b: np.ndarray, limit: int) -> np.ndarray:
    """C[i, j]: acc = 0; for k in order: acc = clip(acc + a[i, k] * b[k, j], +-limit)."""
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[0]:
        raise ValueError(f"clamped_matmul needs A (M x K) and B (K x N); got {a.shape} and "
                         f"{b.shape}")
    if a.shape[0] > b.shape[1]:  # the inner loop runs along N: make it the longer side
        return clamped_matmul(b.T, a.T, limit).T
    return _clamped_matmul(np.ascontiguousarray(a, dtype=np.int8),
                           np.ascontiguousarray(b, dtype=np.int8), np.int32(limit))


@numba.njit(cache=True, nogil=True)
def _clamped_matmul(a, b, limit):  # pragma: no cover - compiled; tested through clamped_matmul
    # golden's saturate(acc + product, limit) after every addition, inlined: numba cannot call it
    out = np.zeros((a.shape[0], b.shape[1]), dtype=np.int32)
    for i in range(a.shape[0]):
        acc = out[i]
        for k in range(a.shape[1]):
            a_ik = np.int32(a[i, k])
            for j in range(b.shape[1]):
                acc[j] = min(max(acc[j] + a_ik * np.int32(b[k, j]), -limit), limit)
    return out


def _largest(x: np.ndarray) -> int:
    return max(abs(int(x.min())), abs(int(x.max()))) if x.size else 0
