"""The exact int8 GEMM: exact at the int32 limit, refused beyond it, clear errors."""

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from niti_hw.golden import INT32_SAFE_K, int8_matmul
from niti_hw.golden.gemm import ENGINES

pytest.importorskip("torch", reason="both GEMM engines are checked; torch is a CI dependency")


@given(st.integers(1, 40), st.integers(1, 300), st.integers(1, 40), st.integers(0, 2**32 - 1))
@settings(max_examples=40, deadline=None)
@pytest.mark.parametrize("engine", sorted(ENGINES))
def test_matches_int64_matmul_exactly(engine, m, k, n, seed):
    rng = np.random.default_rng(seed)
    a = rng.integers(-127, 128, (m, k), dtype=np.int8)
    b = rng.integers(-127, 128, (k, n), dtype=np.int8)
    out = int8_matmul(a, b, engine)
    assert out.dtype == np.int32
    assert (out.astype(np.int64) == a.astype(np.int64) @ b.astype(np.int64)).all()


@pytest.mark.parametrize("engine", sorted(ENGINES))
def test_exact_at_the_largest_safe_k(engine):
    k = INT32_SAFE_K - 1
    assert k * 127 * 127 < 2**31
    a = np.full((2, k), 127, dtype=np.int8)
    a[1] = -127
    b = np.full((k, 1), 127, dtype=np.int8)
    b[::2] = -127  # alternating signs exercise cancellation too
    out = int8_matmul(a, b, engine)
    expected = 127 * 127 * (k - 2 * ((k + 1) // 2))
    assert out[:, 0].tolist() == [-expected, expected]
    full = int8_matmul(a[:1], np.full((k, 1), 127, dtype=np.int8), engine)
    assert int(full[0, 0]) == k * 127 * 127


def test_k_at_the_limit_is_refused():
    a = np.zeros((1, INT32_SAFE_K), dtype=np.int8)
    b = np.zeros((INT32_SAFE_K, 1), dtype=np.int8)
    with pytest.raises(ValueError, match=f"K = {INT32_SAFE_K} terms; K must be below {INT32_SAFE_K}"):
        int8_matmul(a, b)


def test_shape_errors_name_both_shapes():
    with pytest.raises(ValueError, match=r"a is \(2, 3\), b is \(4, 5\)"):
        int8_matmul(np.zeros((2, 3), np.int8), np.zeros((4, 5), np.int8))
    with pytest.raises(ValueError, match="2-D operands; got shapes"):
        int8_matmul(np.zeros(3, np.int8), np.zeros((3, 1), np.int8))


def test_values_outside_int8_range_and_floats_are_refused():
    with pytest.raises(ValueError, match=r"\[-127, 127\]; got range \[-128, 0\]"):
        int8_matmul(np.array([[-128, 0]]), np.array([[1], [1]]))
    with pytest.raises(TypeError, match="b must be an integer array"):
        int8_matmul(np.array([[1]]), np.array([[1.0]]))


def test_unknown_engine_is_refused():
    with pytest.raises(ValueError, match=r"one of \['blas', 'torch'\]; got 'gpu'"):
        int8_matmul(np.ones((1, 1), np.int8), np.ones((1, 1), np.int8), "gpu")


@pytest.mark.parametrize("engine", sorted(ENGINES))
def test_transposed_views_with_odd_strides(engine):
    rng = np.random.default_rng(3)
    column = rng.integers(-127, 128, (26, 1), dtype=np.int8)
    b = rng.integers(-127, 128, (26, 5), dtype=np.int8)
    a = column.T  # shape (1, 26), row stride 1: numpy still calls it C-contiguous
    assert (int8_matmul(a, b, engine) == a.astype(np.int64) @ b.astype(np.int64)).all()


@pytest.mark.parametrize("engine", sorted(ENGINES))
@given(seed=st.integers(0, 2**32 - 1), m=st.integers(1, 40), k=st.integers(1, 40),
       n=st.integers(1, 40), steps=st.tuples(*[st.integers(1, 3)] * 4),
       transposed=st.tuples(st.booleans(), st.booleans()))
@settings(max_examples=40, deadline=None)
def test_strided_and_transposed_views_multiply_exactly(engine, seed, m, k, n, steps, transposed):
    """Operands are passed to the kernels as the views they are: every stride pattern."""
    rng = np.random.default_rng(seed)
    sa, ta = (m, k)[::-1] if transposed[0] else (m, k), transposed[0]
    sb, tb = (k, n)[::-1] if transposed[1] else (k, n), transposed[1]
    big_a = rng.integers(-127, 128, (sa[0] * steps[0], sa[1] * steps[1]), dtype=np.int8)
    big_b = rng.integers(-127, 128, (sb[0] * steps[2], sb[1] * steps[3]), dtype=np.int8)
    a = big_a[:: steps[0], :: steps[1]]
    b = big_b[:: steps[2], :: steps[3]]
    a, b = (a.T if ta else a), (b.T if tb else b)
    assert (int8_matmul(a, b, engine) == a.astype(np.int64) @ b.astype(np.int64)).all()


def test_read_only_operands_multiply_without_warnings():
    a = np.arange(-60, 60, dtype=np.int8).reshape(10, 12)
    b = np.broadcast_to(np.arange(-5, 7, dtype=np.int8)[:, None], (12, 3))  # read-only, stride 0
    a.flags.writeable = False
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = int8_matmul(a, b, "torch")
    assert (got == a.astype(np.int64) @ b.astype(np.int64)).all()
