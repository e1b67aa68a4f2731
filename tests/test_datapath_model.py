"""The value-level datapath model: saturating accumulation, per-tile and predicted exponents."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from niti_hw.datapath import DatapathPolicy, clamped_matmul, narrow_per_tile, saturating_matmul
from niti_hw.golden import RoundingPolicy, int8_matmul, shift_round
from niti_hw.golden.numbers import saturate, signed_limit
from niti_hw.params import HardwareParams
from niti_hw.perf.exponent import exponent_ops, int32_buffer_words
from niti_hw.perf.lowering import ACC, lower


def sequential_reference(a, b, acc_bits):
    """The accumulator one product at a time, k ascending, saturating after every addition."""
    limit = 2 ** (acc_bits - 1) - 1
    out = np.zeros((a.shape[0], b.shape[1]), dtype=np.int64)
    for i in range(a.shape[0]):
        for j in range(b.shape[1]):
            acc = 0
            for k in range(a.shape[1]):
                acc = int(saturate(np.int64(acc + int(a[i, k]) * int(b[k, j])), limit))
            out[i, j] = acc
    return out


def int8_matrix(shape, extremes):
    """int8 values, drawn from the extremes (to force saturation) or the whole range."""
    values = st.sampled_from([-127, -126, 120, 127]) if extremes else st.integers(-127, 127)
    return st.lists(values, min_size=shape[0] * shape[1], max_size=shape[0] * shape[1]).map(
        lambda v: np.array(v, dtype=np.int8).reshape(shape))


@st.composite
def gemm_case(draw):
    m, n = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    k = draw(st.integers(1, 200))
    extremes = draw(st.booleans())
    return (draw(int8_matrix((m, k), extremes)), draw(int8_matrix((k, n), extremes)),
            draw(st.integers(16, 31)))


@given(gemm_case())
def test_narrow_accumulator_saturates_as_the_sequential_reference(case):
    a, b, acc_bits = case
    result, changed = saturating_matmul(a, b, acc_bits, engine="blas")
    reference = sequential_reference(a, b, acc_bits)
    np.testing.assert_array_equal(result, reference)
    assert changed == np.count_nonzero(reference != int8_matmul(a, b, engine="blas"))


def test_saturation_depends_on_the_order_of_accumulation():
    # 16 bits hold 32767: 127*127 * 2 = 32258 fits, a third product saturates, then -1 comes off.
    a = np.array([[127, 127, 127, -1]], dtype=np.int8)
    b = np.array([[127], [127], [127], [127]], dtype=np.int8)
    result, changed = saturating_matmul(a, b, 16, engine="blas")
    assert result.tolist() == [[32767 - 127]] and changed == 1
    result, _ = saturating_matmul(a[:, ::-1].copy(), b, 16, engine="blas")
    assert result.tolist() == [[32767]]  # -1 first: the clamp comes last


def test_clamped_matmul_refuses_mismatched_shapes():
    a, b = np.ones((3, 4), dtype=np.int8), np.ones((5, 2), dtype=np.int8)
    expected = r"needs A \(M x K\) and B \(K x N\); got \(3, 4\) and \(5, 2\)"
    with pytest.raises(ValueError, match=expected):
        clamped_matmul(a, b, 100)


def test_signed_limit_is_the_symmetric_range():
    assert [signed_limit(bits) for bits in (8, 16, 20, 24, 32)] == [
        127, 32767, 524287, 8388607, 2147483647]


def test_int32_accumulator_is_the_golden_product():
    rng = np.random.default_rng(1)
    a = rng.integers(-127, 128, (20, 300)).astype(np.int8)
    b = rng.integers(-127, 128, (300, 9)).astype(np.int8)
    result, changed = saturating_matmul(a, b, 32, engine="blas")
    np.testing.assert_array_equal(result, int8_matmul(a, b, engine="blas"))
    assert changed == 0


def nearest(values, k):
    return shift_round(values, k, "nearest")


def test_per_tile_exponent_rounds_each_tile_then_aligns_to_the_largest():
    # 2x2 tiles. Tile (0, 0): max 1000, B = 10, k = 3. Tile (0, 1): max 255, B = 8, k = 1.
    # Tiles in row block 1: all zero (k = 0). k_max = 3: tile (0, 1) is rounded again by 2.
    x = np.zeros((4, 4), dtype=np.int32)
    x[0, 0], x[1, 1] = 1000, -20
    x[0, 2], x[0, 3] = 255, 3
    values, k = narrow_per_tile(x, 2, 2, 7, nearest)
    assert k == 3
    assert values[0, 0] == 125 and values[1, 1] == -2       # (1000+4)>>3, (-20+4)>>3
    assert values[0, 2] == 32                              # 255 -> 127 (sat) -> (127+2)>>2
    assert values[0, 3] == 1                               # 3 -> (3+1)>>1 = 2 -> (2+2)>>2
    assert shift_round(np.array([3]), 3, "nearest")[0] == 0  # one rounding: the double differs
    assert not values[2:].any()


@given(st.lists(st.integers(-2**24, 2**24), min_size=1, max_size=48),
       st.sampled_from(["nearest", "pseudo"]))
def test_one_tile_covering_the_tensor_is_the_whole_tensor_exponent(flat, mode):
    x = np.array(flat, dtype=np.int32).reshape(len(flat), 1)
    policy = RoundingPolicy(activation=mode)
    values, k = narrow_per_tile(x, 64, 64, 7, lambda v, s: shift_round(v, s, mode))
    golden, golden_k = policy.narrow(x, "activation")
    assert k == golden_k
    np.testing.assert_array_equal(values, golden)


def test_predicted_exponent_uses_the_previous_step_and_saturates():
    policy = DatapathPolicy(activation="nearest", hardware=HardwareParams(exponent="predicted"))
    policy.enter(0, ("forward",))
    first, k1 = policy.narrow(np.array([[1000, -8]], dtype=np.int32), "activation")
    assert k1 == 3 and first.tolist() == [[125, -1]]    # no prediction yet: B of this tensor
    second, k2 = policy.narrow(np.array([[4000, 16]], dtype=np.int32), "activation")
    assert k2 == 3                                      # B = 10 from the step before (now 12)
    assert second.tolist() == [[127, 2]]                # 4000 >> 3 = 500 saturates
    assert policy.stats[(0, "forward")].beyond_exponent == 1
    third, k3 = policy.narrow(np.array([[100, 1]], dtype=np.int32), "activation")
    assert k3 == 5 and third.tolist() == [[3, 0]]       # B = 12 predicted: (100+16)>>5


def test_exponent_headroom_widens_the_prediction():
    """One bit of headroom: a tensor that grew by one bit fits instead of saturating."""
    for headroom, expected_k, expected in ((0, 3, [[127, 2]]), (1, 4, [[125, 1]])):
        policy = DatapathPolicy(activation="nearest", hardware=HardwareParams(
            exponent="predicted", exponent_headroom=headroom))
        policy.enter(0, ("forward",))
        _, k1 = policy.narrow(np.array([[1000, -8]], dtype=np.int32), "activation")
        assert k1 == 3                                  # the first step takes its own B (10)
        values, k = policy.narrow(np.array([[2000, 16]], dtype=np.int32), "activation")
        assert k == expected_k and values.tolist() == expected  # B = 11 now
        assert policy.stats[(0, "forward")].beyond_exponent == (headroom == 0)


@pytest.mark.parametrize("changes, message", [
    ({"exponent_headroom": 1}, "exponent_headroom applies to exponent='predicted' only"),
    ({"exponent": "predicted", "exponent_headroom": 9}, r"exponent_headroom must be in 0\.\.8"),
])
def test_exponent_headroom_is_checked(changes, message):
    with pytest.raises(ValueError, match=message):
        HardwareParams(**changes)


def test_predicted_gradient_saturates_at_m_u_bits():
    policy = DatapathPolicy(gradient="nearest", hardware=HardwareParams(exponent="predicted"))
    policy.enter(0, ("update",))
    # m_u = 3: golden passes k = B - 3. First step: B = 8 (k = 5): 200 -> (200+16)>>5 = 6.
    assert policy.round(np.array([200, 40]), 5, "gradient").tolist() == [6, 1]
    # Next step B = 10, predicted 8: k = 5 again, 1000 >> 5 = 31 saturates at 2**3 = 8.
    assert policy.round(np.array([1000, 40]), 7, "gradient").tolist() == [8, 1]


def test_policy_refuses_anything_but_hardware_params():
    with pytest.raises(TypeError, match="HardwareParams"):
        DatapathPolicy(hardware={"acc_bits": 16})


def test_exponent_flows_change_where_int32_results_are_kept():
    ops = lower("lenet5", (1, 28, 28), 64)
    tensor = int32_buffer_words(exponent_ops(ops, "tensor"))
    assert tensor[("conv1", "forward")] == 64 * 24 * 24 * 20  # the whole int32 output
    assert tensor[("fc1", "gradient")] == 800 * 500
    for strategy in ("predicted", "tile"):
        kept = int32_buffer_words(exponent_ops(ops, strategy))
        assert kept == {("conv2", "error"): 64 * 12 * 12 * 20}  # col2im still adds in int32
    tile = exponent_ops(ops, "tile")
    gemm_rounds = [op for op in ops
                   if op.op == "round" and (op.layer, op.phase) != ("conv2", "error")]
    assert sum(op.op == "realign" for op in tile) == len(gemm_rounds)
    assert all(kind != ACC for op in exponent_ops(ops, "predicted") if op.op == "round"
               and op.phase != "error" for kind, _ in op.reads)
    with pytest.raises(ValueError, match="exponent must be one of"):
        exponent_ops(ops, "per-layer")
