"""oneDNN's u8 x s8 kernel as the torch engine's CPU GEMM: bit-exact against int64 numpy, at the
int16 pair-sum extremes and across K chunks, and chosen only where it applies."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from niti_hw.golden.gemm import (
    FLOAT32_EXACT_K, ONEDNN_MIN_COLS, ONEDNN_MIN_ROWS, ONEDNN_U8_MAX, onednn_pays,
    onednn_u8s8_is_exact, tensor_matmul,
)

torch = pytest.importorskip("torch", reason="the oneDNN kernel is torch's")
needs_onednn = pytest.mark.skipif(not onednn_u8s8_is_exact(),
                                  reason="torch has no exact oneDNN u8 x s8 kernel on this CPU")


def exact(a: np.ndarray, b: np.ndarray, kernel: str = "onednn") -> bool:
    got = tensor_matmul(torch.from_numpy(a), torch.from_numpy(b), kernel)
    return got.dtype == torch.int32 and np.array_equal(
        got.numpy().astype(np.int64), a.astype(np.int64) @ b.astype(np.int64))


@needs_onednn
@given(st.integers(1, 40), st.integers(1, 2 * FLOAT32_EXACT_K + 300), st.integers(1, 40),
       st.sampled_from(["random", "extreme"]), st.integers(0, 2**32 - 1))
@settings(max_examples=30, deadline=None)
def test_matches_int64_matmul_exactly(m, k, n, kind, seed):
    """Random operands, or extreme ones: every u8 127 and every s8 +-127, so int16 pair sums reach
    +-2 * 127**2 and chunks of 1024 reach 1024 * 127**2 (the float32 output's exact limit)."""
    rng = np.random.default_rng(seed)
    a = rng.integers(0, ONEDNN_U8_MAX + 1, (m, k), dtype=np.int8)
    b = rng.integers(-127, 128, (k, n), dtype=np.int8)
    if kind == "extreme":
        a[:] = ONEDNN_U8_MAX
        b = np.where(rng.integers(0, 2, (1, n)) == 1, 127, -127).astype(np.int8).repeat(k, 0)
    assert exact(a, b)


@needs_onednn
@pytest.mark.parametrize("k", [FLOAT32_EXACT_K, FLOAT32_EXACT_K + 1, 5000])
def test_exact_where_one_float32_output_would_round(k):
    """K * 127**2 beyond 2**24 (odd sums float32 cannot hold): exact only because K is chunked."""
    a = np.full((3, k), 127, dtype=np.int8)
    a[1, ::3] = 1
    b = np.full((k, 5), -127, dtype=np.int8)
    b[:, 1] = 127
    b[1::2, 2] = 1
    assert exact(a, b)


@needs_onednn
def test_auto_takes_onednn_for_large_non_negative_left_operands_only():
    rng = np.random.default_rng(1)
    a = rng.integers(0, 128, (ONEDNN_MIN_ROWS, 300), dtype=np.int8)
    b = rng.integers(-127, 128, (300, ONEDNN_MIN_COLS), dtype=np.int8)
    ta, tb = torch.from_numpy(a), torch.from_numpy(b)
    assert onednn_pays(ta, tb) and exact(a, b, "auto")
    a[-1, -1] = -1  # one negative value: the float32 carrier, still exact
    assert not onednn_pays(torch.from_numpy(a), tb) and exact(a, b, "auto")
    assert not onednn_pays(ta[:64], tb)  # too few rows: packing B would cost more than it saves


def test_negative_left_operand_is_refused_with_a_clear_error():
    a = torch.tensor([[1, -2]], dtype=torch.int8)
    with pytest.raises(ValueError, match="non-negative left operand"):
        tensor_matmul(a, a.t(), "onednn")

