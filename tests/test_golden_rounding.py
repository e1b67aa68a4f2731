"""Known answers and properties of B(V) and R(x, k, mode) (SPEC: bitwidth, shift-and-round)."""

import warnings
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from niti_hw.golden import LFSR_TAPS, LfsrLanes, bitwidth, compiled, shift_round

I31 = 2**31 - 1


@pytest.fixture(scope="module", autouse=True, params=["compiled", "eager"])
def implementation(request):
    """Every test here runs on the compiled kernels and on the eager array code."""
    compiled.ENABLED = request.param == "compiled"
    yield request.param
    compiled.ENABLED = True


WIDTHS = {np.int8: 7, np.int16: 15, np.int32: 31, np.int64: 40}


@pytest.mark.parametrize("mode", ["nearest", "pseudo", "stochastic"])
@given(seed=st.integers(0, 2**32 - 1), k=st.integers(0, 32), dtype=st.sampled_from(list(WIDTHS)),
       n_lanes=st.integers(1, 20), shape=st.sampled_from([(1,), (37,), (5, 9), (3, 4, 6)]))
@settings(max_examples=80)
def test_compiled_rounding_equals_the_eager_array_code(mode, seed, k, dtype, n_lanes, shape):
    rng = np.random.default_rng(seed)
    bits = WIDTHS[dtype]
    x = rng.integers(-(2**bits), 2**bits, shape, dtype=np.int64).astype(dtype)
    x.reshape(-1)[-1] = np.iinfo(dtype).min if dtype != np.int64 else -(2**40)  # an extreme
    lanes = LfsrLanes(seed, n_lanes)
    twin = lanes.copy()
    before = compiled.ENABLED
    try:
        compiled.ENABLED = True
        got = shift_round(x.T, k, mode, lanes)  # a transposed view too: row-major order of x.T
        compiled.ENABLED = False
        expected = shift_round(x.T, k, mode, twin)
    finally:
        compiled.ENABLED = before
    assert got.dtype == expected.dtype == np.int8 and got.shape == expected.shape
    assert (got == expected).all()
    assert (lanes.states == twin.states).all()


@pytest.mark.parametrize(
    "values, expected",
    [([0], 0), ([0, 0, 0], 0), ([1], 1), ([-1], 1), ([127, -3], 7), ([-127], 7), ([128], 8),
     ([-128], 8), ([255], 8), ([256], 9), ([I31], 31), ([-(2**31)], 32), ([2**31], 32)],
)
def test_bitwidth_known_answers(values, expected):
    assert bitwidth(np.array(values, dtype=np.int64)) == expected


def test_bitwidth_of_int32_minimum_does_not_wrap():
    assert bitwidth(np.array([-(2**31)], dtype=np.int32)) == 32


@given(st.lists(st.integers(-(2**40), 2**40), min_size=1, max_size=50))
def test_bitwidth_is_bit_length_of_largest_magnitude(values):
    assert bitwidth(np.array(values, dtype=np.int64)) == max(abs(v) for v in values).bit_length()


# (x, k, nearest, pseudo): worked by hand from SPEC's formulas.
KNOWN = [
    (0, 0, 0, 0), (1, 0, 1, 1), (-1, 0, -1, -1), (127, 0, 127, 127), (128, 0, 127, 127),
    (-128, 0, -127, -127), (I31, 0, 127, 127), (-I31, 0, -127, -127),
    (1, 1, 1, 0), (-1, 1, 0, 0), (3, 1, 2, 1), (127, 1, 64, 63), (-127, 1, -63, -63),
    (128, 1, 64, 64), (-128, 1, -64, -64), (I31, 1, 127, 127), (-I31, 1, -127, -127),
    (1, 2, 0, 0), (-1, 2, 0, 0), (2, 2, 1, 1), (-2, 2, 0, -1), (3, 2, 1, 0),
    (127, 2, 32, 31), (-127, 2, -32, -31), (128, 2, 32, 32), (-128, 2, -32, -32),
    (3, 3, 0, 0), (4, 3, 1, 1), (5, 3, 1, 1), (-5, 3, -1, -1), (127, 3, 16, 15),
    (6, 4, 0, 0), (9, 4, 1, 1), (24, 4, 2, 2), (-24, 4, -1, -2), (127, 4, 8, 7),
    (100, 7, 1, 1), (-100, 7, -1, -1), (127, 7, 1, 0), (-127, 7, -1, 0), (1, 7, 0, 0),
    (127, 8, 0, 0), (128, 8, 1, 1), (-128, 8, 0, -1), (-127, 8, 0, 0),
    (98304, 16, 2, 2), (I31, 16, 127, 127), (-I31, 16, -127, -127),
    (I31, 31, 1, 0), (-I31, 31, -1, 0), (127, 31, 0, 0), (-127, 31, 0, 0),
    (I31, 32, 0, 0), (-(2**31), 32, 0, -1),
]


@pytest.mark.parametrize("x, k, nearest, pseudo", KNOWN)
def test_known_answers(x, k, nearest, pseudo):
    value = np.array([x], dtype=np.int64)
    assert shift_round(value, k, "nearest")[0] == nearest
    assert shift_round(value, k, "pseudo")[0] == pseudo


def test_result_is_int8_and_keeps_shape():
    out = shift_round(np.arange(-600, 600, dtype=np.int32).reshape(3, 4, 100), 3)
    assert out.dtype == np.int8 and out.shape == (3, 4, 100)
    assert out.min() == -75 and out.max() == 75


def test_saturates_symmetrically_never_minus_128():
    out = shift_round(np.array([-(2**31), -(2**20), 2**20, 2**31 - 1], dtype=np.int64), 2, "nearest")
    assert out.tolist() == [-127, -127, 127, 127]


def test_single_lane_stochastic_known_answer():
    # seed 1 -> states 0x80200003 (r=3), 0xC0300002 (r=2), 0x60180001 (r=1); f = 3 each time.
    lanes = LfsrLanes(seed=1, n_lanes=1)
    assert shift_round(np.array([3, 3, 3]), 2, "stochastic", lanes).tolist() == [0, 1, 1]
    assert lanes.states.tolist() == [0x60180001]


def test_lfsr_zero_seed_is_replaced_by_one():
    assert LfsrLanes(seed=0, n_lanes=3).states.tolist() == [1, 1, 2]
    assert LfsrLanes(seed=2**32 - 1, n_lanes=2).states.tolist() == [2**32 - 1, 1]


def step(state: int) -> int:
    return (state >> 1) ^ (LFSR_TAPS if state & 1 else 0)


@given(st.integers(0, 2**32 - 1), st.integers(1, 20), st.integers(1, 200), st.integers(1, 32))
@settings(max_examples=60)
def test_element_j_uses_lane_j_mod_L(seed, n_lanes, count, k):
    """Against one lane step at a time (the compiled loop and the eager doubling alike)."""
    lanes = LfsrLanes(seed, n_lanes)
    drawn = lanes.draw(count, k)
    states = [((seed + i) & 0xFFFFFFFF) or 1 for i in range(n_lanes)]
    expected = []
    for j in range(count):
        states[j % n_lanes] = step(states[j % n_lanes])
        expected.append(states[j % n_lanes] & ((1 << k) - 1))
    assert drawn.tolist() == expected
    assert lanes.states.tolist() == states


def test_k_zero_does_not_step_the_lanes():
    lanes = LfsrLanes(seed=9)
    before = lanes.states
    shift_round(np.arange(40), 0, "stochastic", lanes)
    assert (lanes.states == before).all()


int64s = st.integers(-(2**40), 2**40)


@given(st.lists(int64s, min_size=1, max_size=64), st.integers(0, 32))
def test_pseudo_is_odd_symmetric(values, k):
    x = np.array(values, dtype=np.int64)
    assert (shift_round(-x, k, "pseudo") == -shift_round(x, k, "pseudo")).all()


@given(st.lists(int64s, min_size=1, max_size=64), st.integers(0, 32), st.integers(0, 2**32 - 1))
def test_stochastic_is_odd_symmetric_for_the_same_random_bits(values, k, seed):
    x = np.array(values, dtype=np.int64)
    positive = shift_round(x, k, "stochastic", LfsrLanes(seed))
    negative = shift_round(-x, k, "stochastic", LfsrLanes(seed))
    assert (negative == -positive).all()


@pytest.mark.parametrize("mode", ["nearest", "pseudo", "stochastic"])
@given(values=st.lists(st.integers(-(2**31), 2**31 - 1), min_size=1, max_size=64),
       k=st.integers(0, 32))
def test_within_one_of_the_exact_quotient_before_saturation(mode, values, k):
    x = np.array(values, dtype=np.int64)
    out = shift_round(x, k, mode, LfsrLanes(7)).astype(np.int64)
    exact = x / 2.0**k  # reporting-side float check, exact for these magnitudes
    unsaturated = np.abs(exact) <= 126
    assert (np.abs(out - exact)[unsaturated] < 1).all()
    assert (np.abs(out[~unsaturated]) >= 126).all()


def exhaustive_bias(mode: str, k: int, seed: int = 3) -> Fraction:
    """Mean of R(x, k) - x / 2**k over every fraction of 2**k at integer part 5 and -6."""
    x = np.concatenate([np.arange(5 << k, 6 << k), -np.arange(5 << k, 6 << k)]).astype(np.int64)
    out = shift_round(x, k, mode, LfsrLanes(seed)).astype(np.int64)
    error = sum(Fraction(int(o)) - Fraction(int(v), 2**k) for o, v in zip(out, x))
    return error / len(x)


@pytest.mark.parametrize("k", [3, 4, 7, 8, 10])
def test_measured_bias_matches_closed_forms(k):
    # Positive and negative halves: nearest (half up) is biased by +1/2**(k+1) on each side
    # and pseudo/stochastic are odd-symmetric, so the signed means cancel ...
    assert exhaustive_bias("nearest", k) == Fraction(1, 2 ** (k + 1))
    assert exhaustive_bias("pseudo", k) == 0
    # ... while on magnitudes pseudo rounds up with probability (2**h - 1) / 2**(h+1), h = k//2,
    # for a bias toward zero of exactly 1/2**(h+1) - 1/2**(k+1).
    x = np.arange(5 << k, 6 << k, dtype=np.int64)
    out = shift_round(x, k, "pseudo").astype(np.int64)
    bias = Fraction(int((out << k).sum() - x.sum()), 2**k * len(x))
    h = k // 2
    assert bias == -(Fraction(1, 2 ** (h + 1)) - Fraction(1, 2 ** (k + 1)))


@pytest.mark.parametrize("k, fraction", [(4, 5), (8, 77), (12, 3000), (20, 2**19 + 12345)])
def test_stochastic_mean_error_within_five_sigma(k, fraction):
    n = 200_000
    x = np.full(n, (3 << k) + fraction, dtype=np.int64)
    out = shift_round(x, k, "stochastic", LfsrLanes(seed=11)).astype(np.int64)
    p = fraction / 2**k
    sigma = np.sqrt(p * (1 - p) / n)
    assert abs((out - 3).mean() - p) < 5 * sigma


@pytest.mark.parametrize("bad, message", [(-1, r"0\.\.32; got -1"), (33, r"0\.\.32; got 33")])
def test_shift_out_of_range_is_refused(bad, message):
    with pytest.raises(ValueError, match=message):
        shift_round(np.array([1]), bad)


def test_non_integer_shift_is_refused():
    with pytest.raises(TypeError, match="shift k must be an integer"):
        shift_round(np.array([1]), 2.0)
    with pytest.raises(TypeError, match="shift k must be an integer"):
        shift_round(np.array([1]), True)


@pytest.mark.parametrize("array", [np.array([1.0, 2.0]), np.array([True, False])])
def test_float_and_bool_inputs_are_refused(array):
    with pytest.raises(TypeError, match=f"integer array.*got dtype {array.dtype}"):
        shift_round(array, 1)
    with pytest.raises(TypeError, match="integer array"):
        bitwidth(array)


def test_unknown_mode_and_missing_lanes():
    with pytest.raises(ValueError, match=r"one of \('nearest', 'stochastic', 'pseudo'\); got 'up'"):
        shift_round(np.array([1]), 1, "up")
    with pytest.raises(ValueError, match="needs lanes=LfsrLanes"):
        shift_round(np.array([1]), 1, "stochastic")


def test_a_compile_failure_warns_once_and_rounds_eagerly(monkeypatch):
    def broken(*args):
        raise RuntimeError("no LLVM here")

    x = np.arange(-3000, 3000, 7, dtype=np.int32)
    before = compiled.ENABLED
    try:
        compiled.ENABLED = False
        expected = shift_round(x, 5, "pseudo")
        compiled.ENABLED = True
        monkeypatch.setattr(compiled, "_round_nearest", broken)
        compiled.kernels.cache_clear()
        with pytest.warns(RuntimeWarning, match="numba could not compile.*eager array code"):
            got = shift_round(x, 5, "pseudo")
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # once: the second call is silent
            again = shift_round(x, 5, "pseudo")
    finally:
        compiled.ENABLED = before
        monkeypatch.undo()
        compiled.kernels.cache_clear()
    assert (got == expected).all() and (again == expected).all()
