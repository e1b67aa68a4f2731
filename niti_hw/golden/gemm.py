"""Exact int8 x int8 -> int32 matrix product, the one GEMM every layer of the golden model uses.

Two engines compute the same exact integers; `torch` is the default where torch is installed:
- torch (the optional extra): `torch._int_mm` where it is a true int8 -> int32 GEMM (VNNI-class
  CPUs, CUDA); on other CPUs it is a plain loop, so torch's float32 GEMM carries the integers
  instead, exactly, as below (`float32_carrier_matmul`), except for large products whose left
  operand is non-negative (forward GEMMs after ReLU), which run on oneDNN's u8 x s8 kernel
  (`onednn_u8s8_matmul`), measured 1.7-3x faster than the carrier there on an AVX2 CPU;
- float64 BLAS, which is exact here: every operand is an integer of magnitude <= 127, so every
  product and partial sum is an integer of magnitude <= K * 127**2 < 2**31 (K is checked), far
  below 2**53, where float64 holds all integers exactly, whatever the order of the additions.
numpy's own integer matmul is exact too but has no BLAS and runs 10-30x slower than either.

torch tensors (the torch backend runs this golden code on them) stay on their device and go
through `torch._int_mm` there, laid out as CUDA's kernel requires (see `int_mm_layout`), or the
float32 carrier on a CPU without a real int8 kernel.
"""

from __future__ import annotations

import functools
import importlib.util
import time

import numpy as np

from .numbers import INT32_SAFE_K, as_int_array, check_int8_range, namespace


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
    """torch on the CPU: `_int_mm` where it is a real int8 kernel, else torch's float32 carrier."""
    import torch

    return tensor_matmul(_int8_tensor(a), _int8_tensor(b)).numpy()


def _int8_tensor(x: np.ndarray):
    """x as an int8 tensor sharing its memory where it can: torch's kernels take a transposed
    view as it is (a row-major copy of LeNet-5's (500, 4096) transposed im2col operand cost more
    than the GEMM). Read-only arrays (torch warns on sharing them) and zero or negative strides
    are copied."""
    import torch

    odd = any(s <= 0 for s in x.strides) or not x.flags.writeable
    if x.dtype != np.int8 or odd:
        x = np.array(x, dtype=np.int8, order="C")
    return torch.from_numpy(x)


def _round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


def int_mm_layout(a, b):
    """Operands padded with zeros (which add nothing) so that CUDA's int8 kernel accepts them:
    M > 16, K and N multiples of 8, A row-major and B column-major (its fast layout)."""
    import torch.nn.functional as F

    (m, k), n = a.shape, b.shape[1]
    rows, inner, cols = max(m, 17), _round_up(k, 8), _round_up(n, 8)
    if (rows, inner) != (m, k):
        a = F.pad(a, (0, inner - k, 0, rows - m))
    if (inner, cols) != (k, n):
        b = F.pad(b, (0, cols - n, 0, inner - k))
    return a.contiguous(), b.t().contiguous().t()


FLOAT32_EXACT_K = 1024
"""A float32 GEMM is exact on int8-range operands while K * 127**2 < 2**24: at K <= 1024."""


def float32_carrier_matmul(a, b):
    """Exact int8 product on a device's float32 GEMM: K in chunks of 1024, so every product and
    partial sum is an integer below 2**24 (float32 holds those exactly, in any order), and the
    chunks' int32 results add exactly (K < INT32_SAFE_K is checked)."""
    import torch

    total = None
    for start in range(0, a.shape[1], FLOAT32_EXACT_K):
        stop = start + FLOAT32_EXACT_K
        part = torch.mm(a[:, start:stop].to(torch.float32), b[start:stop].to(torch.float32))
        part = part.to(torch.int32)
        total = part if total is None else total.add_(part)
    return total


ONEDNN_U8_MAX = 127
"""AVX2 int8 kernels (vpmaddubsw) add u8 x s8 products in pairs into a saturating int16. SPEC int8
values lie in -127..127, so a non-negative operand is <= 127 and a pair sums to at most
2 * 127 * 127 = 32258 < 32767: never saturated (checked on all-extreme operands by the probe and
tests). Signed values offset into u8 (up to 255) do saturate there: non-negative operands only.
A test forces oneDNN's AVX2 kernel and sees it (64 terms of 255 x 127 give 32 x 32767); VNNI
CPUs add the products in int32 and are exact either way."""


def _onednn_u8s8_chunk(x_u8, wt_s8):
    """x (M, K) uint8 @ wt.T for wt (N, K) int8, as oneDNN's float32 output (scales 1, zero
    points 0: the int32 accumulator converted, exact while below 2**24)."""
    import torch

    n = wt_s8.shape[0]
    packed = torch.ops.onednn.qlinear_prepack(wt_s8, None)
    return torch.ops.onednn.qlinear_pointwise(
        x_u8, 1.0, 0, packed, torch.ones(n), torch.zeros(n, dtype=torch.long), None, 1.0, 0,
        torch.float32, "none", [], "")


def onednn_u8s8_matmul(a, b):
    """Exact a @ b on the CPU for a in 0..127, b in -127..127 (int8 values): oneDNN's quantized
    linear kernel, K in chunks of 1024 so that each chunk's result is below 2**24 and its float32
    output exact, the chunks' int32 results added exactly."""
    import torch

    a8, b8 = a.to(torch.int8), b.to(torch.int8)
    total = None
    for start in range(0, a8.shape[1], FLOAT32_EXACT_K):
        stop = start + FLOAT32_EXACT_K
        x = a8[:, start:stop].contiguous().view(torch.uint8)  # same bits: every value >= 0
        part = _onednn_u8s8_chunk(x, b8[start:stop].t().contiguous()).to(torch.int32)
        total = part if total is None else total.add_(part)
    return total


ONEDNN_MIN_ROWS, ONEDNN_MIN_COLS, ONEDNN_MAX_K = 2048, 32, 4608
"""Where oneDNN beats the float32 carrier (measured on an AVX2 CPU, 1 and 2 threads): its packing
of B costs ~0.3 ms a call and each K chunk is one more call, so small M, narrow N or long K lose."""


def onednn_pays(a, b) -> bool:
    """Whether this CPU product goes to oneDNN: large enough, left operand non-negative, and the
    kernel present and exact here."""
    (m, k), n = a.shape, b.shape[1]
    if m < ONEDNN_MIN_ROWS or n < ONEDNN_MIN_COLS or k > ONEDNN_MAX_K:
        return False
    return onednn_u8s8_is_exact() and bool(a.min() >= 0)


def _int_mm_operand(x):
    """x, or a row-major copy unless it is a plain row- or column-major matrix (leading
    dimension at least its row or column length). The CPU `_int_mm` misreads the others: a
    (1, K) view of a column has row stride 1 and torch calls it contiguous; an im2col view whose
    windows overlap (a kernel as wide as its input) can reshape to rows that overlap, row
    stride below K. Both came out as garbage."""
    import torch

    (rows, cols), (row_stride, col_stride) = x.shape, x.stride()
    if rows > 1 and cols > 1 and ((col_stride == 1 and row_stride >= cols)
                                  or (row_stride == 1 and col_stride >= rows)):
        return x
    return x.clone(memory_format=torch.contiguous_format)


KERNELS = ("auto", "int_mm", "float32", "onednn")


def tensor_matmul(a, b, kernel: str = "auto", layout: bool | None = None):
    """Exact int8 product of torch tensors on their own device, as int32.

    `int_mm` runs `torch._int_mm` (on CUDA laid out by `int_mm_layout`, or when `layout` says
    so), `float32` the float32 carrier, `onednn` `onednn_u8s8_matmul` (CPU, `a` >= 0 only),
    `auto` `_int_mm` unless it is the CPU's slow fallback, then oneDNN where it pays, else the
    carrier.
    """
    import torch

    cuda = a.device.type == "cuda"
    if kernel == "auto":
        if cuda or int_mm_is_fast():
            kernel = "int_mm"
        else:
            kernel = "onednn" if onednn_pays(a, b) else "float32"
    if kernel == "float32":
        return float32_carrier_matmul(a, b)
    if kernel == "onednn":
        if cuda or bool(a.min() < 0):
            raise ValueError("the onednn kernel needs CPU tensors and a non-negative left "
                             "operand (0..127); use kernel 'auto' or 'float32'")
        return onednn_u8s8_matmul(a, b)
    a8, b8 = _int_mm_operand(a.to(torch.int8)), _int_mm_operand(b.to(torch.int8))
    if not (cuda if layout is None else layout):
        return torch._int_mm(a8, b8)
    m, n = a8.shape[0], b8.shape[1]
    return torch._int_mm(*int_mm_layout(a8, b8))[:m, :n]


@functools.cache
def int_mm_is_fast() -> bool:
    """Whether this CPU's torch._int_mm is a real int8 kernel (oneDNN needs VNNI-class CPUs; on
    others torch falls back to a plain loop hundreds of times slower than float BLAS). False
    without torch."""
    try:
        import torch
    except ImportError:
        return False
    a = (torch.arange(192 * 192) % 255 - 127).to(torch.int8).reshape(192, 192)
    seconds, threads = {}, torch.get_num_threads()
    torch.set_num_threads(1)  # one thread: an oversubscribed pool would blur the comparison
    try:
        for name, function, operand in (("int8", torch._int_mm, a), ("float", torch.mm, a.float())):
            function(operand, operand)
            times = []
            for _ in range(2):
                start = time.perf_counter()
                function(operand, operand)
                times.append(time.perf_counter() - start)
            seconds[name] = min(times)
    finally:
        torch.set_num_threads(threads)
    return seconds["int8"] < 2 * seconds["float"]


@functools.cache
def onednn_u8s8_is_exact() -> bool:
    """Whether torch has oneDNN's quantized linear kernel here and it is exact on the extremes
    (all-127 u8 against +-127 s8, pairs of one sign: the largest int16 pair sums) and on random
    operands, K = 1024 (the largest chunk). False without torch or the op."""
    try:
        import torch

        rng = np.random.default_rng(0)
        a = np.full((40, FLOAT32_EXACT_K), ONEDNN_U8_MAX, dtype=np.int8)
        a[1::2] = rng.integers(0, ONEDNN_U8_MAX + 1, a[1::2].shape)
        b = rng.integers(-127, 128, (FLOAT32_EXACT_K, 24), dtype=np.int8)
        b[:, :4] = 127
        b[:, 4:8] = -127
        got = onednn_u8s8_matmul(torch.from_numpy(a), torch.from_numpy(b)).numpy()
    except (ImportError, AttributeError, NotImplementedError, RuntimeError):
        return False
    return bool(np.array_equal(got, a.astype(np.int64) @ b.astype(np.int64)))


ENGINES = {"blas": blas_matmul, "torch": torch_matmul}
DEFAULT_ENGINE = "torch" if importlib.util.find_spec("torch") else "blas"
TENSOR_KERNELS = {"blas": "float32", "torch": "auto"}
"""What each engine runs on torch tensors: BLAS means the float carrier there too."""


def int8_matmul(a, b, engine: str | None = None):
    """a @ b for int8-valued operands, accumulated exactly and returned as int32.

    numpy operands run on `engine` in numpy; torch tensors on their own device (`tensor_matmul`).
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
    engine = engine or DEFAULT_ENGINE
    if engine not in ENGINES:
        raise ValueError(f"GEMM engine must be one of {sorted(ENGINES)}; got {engine!r}")
    if namespace(a, b) is not np:
        return tensor_matmul(a, b, TENSOR_KERNELS[engine])
    return ENGINES[engine](a, b)
