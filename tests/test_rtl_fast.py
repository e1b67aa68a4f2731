"""Fast tier: every RTL unit in `amaranth.sim`, in-process, bit-exact against niti_hw.golden.

No HDL simulator needed (no `sim` marker): the same stimulus and golden expectations as the cocotb
benches (`sim/stimulus.py`), on small shapes, with random valid gaps and backpressure.
"""

import logging
import sys
from pathlib import Path

import numpy as np
import pytest

from niti_hw.golden import MAX_SHIFT, LfsrLanes, RoundingPolicy, bitwidth, int8_matmul
from niti_hw.golden.init import IntegerWeights
from niti_hw.golden.layers import weight_gradient
from niti_hw.golden.numbers import narrowing_shift, signed_limit
from niti_hw.params import HardwareParams
from niti_hw.perf.tiling import ROW_MAJOR, TileWalk, operand_beats, tile_grid

pytest.importorskip("amaranth", reason="needs the rtl extra: pip install 'niti-hw[rtl]'")
pytest.importorskip("cocotb", reason="needs the rtl extra: pip install 'niti-hw[rtl]'")

from niti_hw.rtl.bitwidth_detector import BitwidthDetector  # noqa: E402
from niti_hw.rtl.datapath import INT8_BITS, RULE_GRADIENT, RULE_NARROW, Datapath  # noqa: E402
from niti_hw.rtl.max_pool import MaxPool, MaxPoolBackward  # noqa: E402
from niti_hw.rtl.relu import Relu, ReluBackward  # noqa: E402
from niti_hw.rtl.shift_round import ShiftRound  # noqa: E402
from niti_hw.rtl.systolic_array import SystolicArray  # noqa: E402
from niti_hw.rtl.update_unit import WeightUpdate  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "sim"))
from harness import Scoreboard  # noqa: E402
from inprocess import run_stream  # noqa: E402
from stimulus import (array_rows, detector_stream, int8_matrix, padded_rows,  # noqa: E402
                      pool_backward_stream, pool_forward_stream, pool_tensors, random_weights,
                      relu_backward_stream, relu_forward_stream, relu_tensors, rounding_expected,
                      rounding_tensors, saturating_weights)

SMALL = HardwareParams(rows=2, cols=4, lanes=2, lfsr_lanes=4)


def scoreboard(unit: str, got: list, expected: list) -> int:
    """The benches' scoreboard (None in expected is a don't-care); returns the beats compared."""
    board = Scoreboard(unit, logging.getLogger(__name__))
    board.compare_beats("output stream", got, expected)
    return board.vectors


def test_systolic_array_matches_golden():
    rng = np.random.default_rng(3)
    beats, expected = [], []
    for n, (m, k, cols) in enumerate([(3, 1, 5), (2, 7, 4), (1, 2, 3), (4, 12, 8)]):
        kind = ("random", "extremes", "mixed", "zeros")[n]
        a, b = int8_matrix(rng, (m, k), kind), int8_matrix(rng, (k, cols), kind)
        beats += operand_beats(a, b, SMALL)
        expected += array_rows(a, b, SMALL)
    got = run_stream(SystolicArray(SMALL), beats, len(expected), "systolic array 2x4",
                     gap=0.3, stall=0.3, seed=1)
    assert scoreboard("systolic array", got, expected) == 20  # 10 tiles of 2 rows


def test_bitwidth_detector_matches_golden():
    p = HardwareParams(rows=4, cols=4, lanes=4)
    beats, expected = detector_stream(p, np.random.default_rng(4), 72)
    got = run_stream(BitwidthDetector(p), beats, len(expected), "bitwidth detector",
                     gap=0.3, stall=0.3, seed=2)
    assert scoreboard("bitwidth detector", got, expected) == 72
    assert {0, 8, 31, 32} <= set(expected) and len(set(expected)) >= 30  # B across 0..32


@pytest.mark.parametrize("mode", ["nearest", "pseudo", "stochastic"])
def test_shift_round_matches_golden(mode):
    """Every k in 0..32, partial `keep` over garbage lanes, k > 32 refused; LFSRs persist."""
    tensors, beats = rounding_tensors(SMALL, np.random.default_rng(5), 240)
    lanes = LfsrLanes(SMALL.lfsr_seed, SMALL.lfsr_lanes)
    expected = rounding_expected(SMALL, mode, lanes, tensors)
    got = run_stream(ShiftRound(SMALL, mode), beats, len(expected), f"shift_round {mode}",
                     gap=0.3, stall=0.3, seed=3)
    scoreboard(f"shift_round {mode}", got, expected)
    assert {k for _, k in tensors} >= set(range(MAX_SHIFT + 1))
    assert any(k > MAX_SHIFT for _, k in tensors)
    assert any(0 < beat["keep"] < 3 for beat in beats)


def datapath_stream(p, policy: RoundingPolicy, a, b, rule: int, m_u: int,
                    walk: TileWalk = ROW_MAJOR):
    """cfg and operand beats of one tensor C = a @ b (tiles in `walk` order), and its golden
    output beats: SPEC's narrow rule (k = max(0, B - 7)) or the gradient rule (`weight_gradient`:
    k = B - m_u, saturation only when B <= m_u, zeros at B = 0), row-major whatever the walk.
    `policy` carries the stochastic lanes across tensors."""
    acc = int8_matmul(a.astype(np.int8), b.astype(np.int8))
    if rule == RULE_GRADIENT:
        values = weight_gradient(acc, m_u, policy)
        values = np.zeros(acc.shape, np.int8) if values is None else values
        k = narrowing_shift(bitwidth(acc), m_u)
    else:
        values, k = policy.narrow(acc, "activation")
    beats = [("cfg", {"m": acc.shape[0], "n": acc.shape[1], "rule": rule, "m_u": m_u,
                      "band": walk.band, "block": walk.block})]
    beats += operand_beats(a, b, p, walk)
    flat, expected = values.reshape(-1).astype(int).tolist(), []
    for start in range(0, len(flat), p.lanes):
        part = flat[start:start + p.lanes]
        expected.append({"data": part + [None] * (p.lanes - len(part)),
                         "keep": (1 << len(part)) - 1, "last": int(start + p.lanes >= len(flat)),
                         "k": k})
    return beats, expected


DATAPATH_P = SMALL.replace(round_mode="stochastic", tensor_buffer_words=256)


def datapath_policy(p) -> RoundingPolicy:
    return RoundingPolicy(*[p.round_mode] * 4, seed=p.lfsr_seed, n_lanes=p.lfsr_lanes)


def test_tensor_datapath_matches_golden():
    """The top: multi-tile tensors with edge tiles, B over the whole tensor, k by the narrow or
    the gradient rule, R replayed in row-major order (stochastic lanes as the golden model's)."""
    p, rng = DATAPATH_P, np.random.default_rng(6)
    policy = datapath_policy(p)
    beats, expected = [], []
    for n, (m, cols, depth) in enumerate([(5, 7, 3), (3, 9, 1), (2, 4, 12), (7, 3, 5)]):
        a = int8_matrix(rng, (m, depth), ("random", "extremes", "mixed", "random")[n])
        b = int8_matrix(rng, (depth, cols), "random")
        rule = RULE_GRADIENT if n == 3 else RULE_NARROW  # the gradient's B > m_u here
        tensor_beats, tensor_expected = datapath_stream(p, policy, a, b, rule, 3)
        beats, expected = beats + tensor_beats, expected + tensor_expected
    assert expected[-1]["k"] > 0
    got = run_stream(Datapath(p), beats, len(expected), "datapath", gap=0.2, stall=0.2, seed=4)
    assert scoreboard("datapath", got, expected) == len(expected) == 18 + 14 + 4 + 11


def test_tensor_datapath_takes_any_tile_walk():
    """Blocked tile orders (bands of tile rows cut into column blocks, `TileWalk`) land every
    drained row at its row-major place: whole and partial bands and blocks, blocks of one tile,
    edge tiles at a block's end and the tensor's, a block wider than the tensor."""
    p, rng = DATAPATH_P, np.random.default_rng(9)
    policy = datapath_policy(p)
    cases = [((9, 17, 3), TileWalk(0, 2)), ((9, 17, 2), TileWalk(2, 2)), ((7, 13, 4), TileWalk(3, 1)),
             ((5, 16, 1), TileWalk(3, 3)), ((3, 9, 5), TileWalk(0, 1)), ((6, 12, 2), TileWalk(2, 0)),
             ((4, 5, 3), TileWalk(5, 7))]
    reordered = [tile_grid(*shape[:2], p, walk) != tile_grid(*shape[:2], p) for shape, walk in cases]
    assert reordered == [True] * 5 + [False] * 2  # the last two walk row-major after all
    beats, expected = [], []
    for (m, cols, depth), walk in cases:
        a = int8_matrix(rng, (m, depth), "random")
        b = int8_matrix(rng, (depth, cols), "mixed")
        tensor_beats, tensor_expected = datapath_stream(p, policy, a, b, RULE_NARROW, INT8_BITS, walk)
        beats, expected = beats + tensor_beats, expected + tensor_expected
    got = run_stream(Datapath(p), beats, len(expected), "datapath walks", gap=0.2, stall=0.2,
                     seed=9)
    assert scoreboard("datapath walks", got, expected) == len(expected)


NARROW = (RULE_NARROW, INT8_BITS)  # m_u is not read under the narrow rule


def small_values(rng, shape, largest: int) -> np.ndarray:
    return rng.integers(-largest, largest + 1, size=shape)


def test_tensor_datapath_keeps_small_tensors_whole():
    """B at or below the bits a rule keeps gives k = 0 (saturation only, no LFSR draw): the
    narrow rule at B = 2..7, the gradient rule at B <= m_u (B = 8 = m_u saturates 254 to 127) and
    at B = 0 (zeros); then a tensor with k > 0 shows the LFSRs did not step."""
    p, rng = DATAPATH_P, np.random.default_rng(7)
    policy = datapath_policy(p)
    cases = [  # (a, b, rule, m_u): B of a @ b
        (small_values(rng, (5, 3), 1), small_values(rng, (3, 7), 1), *NARROW),  # <= 2
        (small_values(rng, (3, 2), 7), small_values(rng, (2, 5), 3), *NARROW),  # <= 6
        (np.full((2, 1), 127), np.array([[1, -1, 0]]), *NARROW),  # 7
        (small_values(rng, (4, 2), 2), small_values(rng, (2, 6), 1), RULE_GRADIENT, 6),  # <= 3
        (small_values(rng, (3, 1), 1), small_values(rng, (1, 5), 1), RULE_GRADIENT, 1),  # 1
        (np.array([[127], [-127], [3]]), np.array([[2, 1, -2, 0, 1]]), RULE_GRADIENT, 8),  # 8
        (np.zeros((3, 2), int), small_values(rng, (2, 4), 5), RULE_GRADIENT, 4),  # 0
        (int8_matrix(rng, (5, 4), "random"), int8_matrix(rng, (4, 6), "random"), *NARROW),
    ]
    beats, expected, shifts = [], [], []
    for a, b, rule, m_u in cases:
        tensor_beats, tensor_expected = datapath_stream(p, policy, a, b, rule, m_u)
        beats, expected = beats + tensor_beats, expected + tensor_expected
        shifts.append(tensor_expected[0]["k"])
    bits = [bitwidth(int8_matmul(a.astype(np.int8), b.astype(np.int8))) for a, b, _, _ in cases]
    assert shifts[:-1] == [0] * 7 and shifts[-1] > 0
    assert 0 < bits[0] < bits[1] < 7 and 0 < bits[3] < 6  # below what the rule keeps
    assert bits[2] == 7 and bits[4] == 1 and bits[5] == 8 and bits[6] == 0  # on it, and B = 0
    got = run_stream(Datapath(p), beats, len(expected), "datapath", gap=0.2, stall=0.2, seed=5)
    assert scoreboard("datapath", got, expected) == len(expected)


def update_stream(p, bits: int, tensors):
    """Input beats of the update unit for (W, g) tensors, and the golden output beats: W' of
    `IntegerWeights.apply` and q of `as_int8`. The unit has no `keep`: a partial final beat is
    padded with W = g = 0, which golden updates like any other weight."""
    beats, expected = [], []
    for w, g in tensors:
        w_rows, g_rows = padded_rows(w, p.lanes), padded_rows(g, p.lanes)
        golden = IntegerWeights(w_rows, 0, bits)
        golden.apply(g_rows)
        q_rows = golden.as_int8().values
        for n in range(len(w_rows)):
            last = int(n == len(w_rows) - 1)
            beats.append({"w": w_rows[n].tolist(), "g": g_rows[n].tolist(), "last": last})
            expected.append({"w": golden.values[n].astype(int).tolist(),
                             "q": q_rows[n].astype(int).tolist(), "last": last})
    return beats, expected


@pytest.mark.parametrize("bits", [8, 12, 16, 24])
def test_weight_update_matches_golden(bits):
    """W' = sat(W - g) and its int8 read-out, with W - g past both limits by up to 127, on them,
    and one inside; then random tensors over the whole range, ending in partial beats."""
    p = SMALL.replace(lanes=4)
    rng = np.random.default_rng(bits)
    tensors = [saturating_weights(bits)] + [random_weights(rng, int(rng.integers(1, 30)), bits)
                                            for _ in range(6)]
    beats, expected = update_stream(p, bits, tensors)
    got = run_stream(WeightUpdate(p, bits), beats, len(expected), f"update_unit w{bits}",
                     gap=0.3, stall=0.3, seed=bits)
    assert scoreboard(f"update_unit w{bits}", got, expected) == len(expected)
    w, g = tensors[0]
    limit = signed_limit(bits)
    assert {limit + 127, -limit - 127} <= set((w - g).tolist())  # saturates both ways, by 127


def test_relu_matches_golden():
    """Forward: golden ReLU's values and the mask it keeps, over random, mixed, +-127 and zero
    tensors; backward: random errors through that mask. Both with gaps and backpressure."""
    p = SMALL.replace(lanes=4)
    rng = np.random.default_rng(8)
    tensors = relu_tensors(p, rng, 40)
    beats, expected = relu_forward_stream(p, tensors)
    got = run_stream(Relu(p), beats, len(expected), "relu", gap=0.3, stall=0.3, seed=6)
    assert scoreboard("relu", got, expected) == len(expected)
    values = np.concatenate(tensors).ravel()
    assert {-127, 0, 127} <= set(values.tolist()) and len(set(values.tolist())) > 100
    beats, expected = relu_backward_stream(p, rng, tensors)
    got = run_stream(ReluBackward(p), beats, len(expected), "relu backward", gap=0.3, stall=0.3,
                     seed=7)
    assert scoreboard("relu backward", got, expected) == len(expected)
    masks = [beat["mask"] for beat in beats]
    assert 0 in masks and (1 << p.lanes) - 1 in masks


@pytest.mark.parametrize("kernel", [1, 2, 3])
def test_max_pool_matches_golden(kernel):
    """Forward: golden MaxPool2d's values and winning offsets (the first largest on ties), edges
    the pool leaves out, one and two lane groups of channels; backward: random errors routed to
    those offsets. Both with gaps and backpressure."""
    p = SMALL.replace(lanes=2)
    rng = np.random.default_rng(9 + kernel)
    tensors = pool_tensors(p, rng, 8, kernel)
    beats, expected = pool_forward_stream(p, kernel, tensors)
    got = run_stream(MaxPool(p, kernel), beats, len(expected), f"max_pool k={kernel}",
                     gap=0.3, stall=0.3, seed=kernel)
    assert scoreboard(f"max_pool k={kernel}", got, expected) == len(expected)
    if kernel > 1:  # ties that a last-largest rule would break differently
        windows = np.array([beat["data"] for beat in beats]).reshape(len(expected), -1, p.lanes)
        ties = (windows == windows.max(axis=1, keepdims=True)).sum(axis=1) > 1
        assert ties.sum() > 20
    beats, expected = pool_backward_stream(p, kernel, rng, tensors)
    got = run_stream(MaxPoolBackward(p, kernel), beats, len(expected), f"max_pool back k={kernel}",
                     gap=0.3, stall=0.3, seed=kernel + 10)
    assert scoreboard(f"max_pool back k={kernel}", got, expected) == len(expected)
