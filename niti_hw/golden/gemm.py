"""Exact int8 x int8 -> int32 matrix product, the one GEMM every layer of the golden model uses."""

from __future__ import annotations

import numpy as np

from .numbers import INT32_SAFE_K, as_int_array, check_int8_range


def check_reduction_length(k: int, what: str = "matrix product") -> None:
    """Refuse a reduction length whose int32 accumulator could overflow (never wrap silently)."""
    if k >= INT32_SAFE_K:
        raise ValueError(
            f"{what} reduces over K = {k} terms; K must be below {INT32_SAFE_K} so that "
            f"K * 127 * 127 < 2**31 fits the int32 accumulator. Split the reduction "
            f"(smaller batch or tile) and add the partial int32 results yourself."
        )


def int8_matmul(a, b) -> np.ndarray:
    """a @ b for int8-valued operands, accumulated exactly and returned as int32.

    The engine is float64 BLAS, which is exact here: every operand is an integer of magnitude
    <= 127, so every product and every partial sum is an integer of magnitude <= K * 127**2
    < 2**31 (K is checked), far below 2**53, where float64 represents all integers exactly;
    the result does not depend on the order of the additions. numpy's integer matmul has no
    BLAS and runs 20-50x slower.
    """
    a = as_int_array(a, "a")
    b = as_int_array(b, "b")
    if a.ndim != 2 or b.ndim != 2:
        raise ValueError(f"int8_matmul needs 2-D operands; got shapes {a.shape} and {b.shape}")
    if a.shape[1] != b.shape[0]:
        raise ValueError(
            f"int8_matmul: inner dimensions differ: a is {a.shape}, b is {b.shape} "
            f"(a.shape[1] must equal b.shape[0])"
        )
    check_reduction_length(a.shape[1])
    check_int8_range(a, "a")
    check_int8_range(b, "b")
    product = a.astype(np.float64) @ b.astype(np.float64)
    return product.astype(np.int32)
