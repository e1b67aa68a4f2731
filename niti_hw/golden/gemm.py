"""Exact int8 x int8 -> int32 matrix product, the one GEMM every layer of the golden model uses.

Two engines compute the same exact integers; the faster one available is used:
- `torch._int_mm` (the optional torch extra; its CPU kernel is a true int8 -> int32 GEMM);
- float64 BLAS, which is exact here: every operand is an integer of magnitude <= 127, so every
  product and partial sum is an integer of magnitude <= K * 127**2 < 2**31 (K is checked), far
  below 2**53, where float64 holds all integers exactly, whatever the order of the additions.
numpy's own integer matmul is exact too but has no BLAS and runs 10-30x slower than either.
"""

from __future__ import annotations

import importlib.util

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


def blas_matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Exact for int8-range operands and K < INT32_SAFE_K (see the module docstring)."""
    return (a.astype(np.float64) @ b.astype(np.float64)).astype(np.int32)


def torch_matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """torch._int_mm on the CPU: int8 operands, int32 accumulation, any shape."""
    import torch

    # Fresh copies: numpy calls a (1, K) view of a transposed column "contiguous" while its row
    # stride is 1, and _int_mm then reads the wrong elements. A copy has canonical strides.
    a8 = torch.from_numpy(np.array(a, dtype=np.int8, order="C"))
    b8 = torch.from_numpy(np.array(b, dtype=np.int8, order="C"))
    return torch._int_mm(a8, b8).numpy()


ENGINES = {"blas": blas_matmul, "torch": torch_matmul}
DEFAULT_ENGINE = "torch" if importlib.util.find_spec("torch") else "blas"


def int8_matmul(a, b, engine: str | None = None) -> np.ndarray:
    """a @ b for int8-valued operands, accumulated exactly and returned as int32."""
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
    engine = engine or DEFAULT_ENGINE
    if engine not in ENGINES:
        raise ValueError(f"GEMM engine must be one of {sorted(ENGINES)}; got {engine!r}")
    return ENGINES[engine](a, b)
