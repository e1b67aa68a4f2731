"""Tensor datapath bench: whole GEMM outputs through tiles -> B(tensor) -> k by rule -> R in
row-major order, bit-exact against the golden model, and cycles against niti_hw.perf.timing.

Golden: `RoundingPolicy.narrow` (activation/error rule) or `weight_gradient` (gradient rule, m_u
random) on `int8_matmul` of the whole tensor, with one persistent policy so stochastic LFSR lanes
carry over from tensor to tensor as the unit's do. Shapes are random: K below `rows`, edge tiles,
M and N not multiples of the array, and 100 x 30 where the scratchpad holds it; every other tensor
comes in a random blocked tile order (`TileWalk`), which must change neither values nor cycles.
"""

from __future__ import annotations

import cocotb
import numpy as np
from cocotb.triggers import ReadOnly, RisingEdge
from harness import BENCH_TIMEOUT, Scoreboard, bench_int, bench_params, record, start
from stimulus import int8_matrix
from tensor_host import TensorHost

from niti_hw.golden import RoundingPolicy, bitwidth, int8_matmul
from niti_hw.golden.layers import weight_gradient
from niti_hw.golden.numbers import narrowing_shift
from niti_hw.perf.tiling import ROW_MAJOR, TileWalk
from niti_hw.perf.timing import TENSOR_CONFIG_CYCLES, tensor_gemm_cycles
from niti_hw.rtl.datapath import INT8_BITS, RULE_GRADIENT, RULE_NARROW

KINDS = ("random", "mixed", "extremes", "zeros")


def golden_policy(p) -> RoundingPolicy:
    mode = p.round_mode
    return RoundingPolicy(mode, mode, mode, mode, seed=p.lfsr_seed, n_lanes=p.lfsr_lanes)


def golden(acc, rule, m_u, policy):
    """(int8 values, k, no_update) of SPEC for one tensor."""
    if rule == RULE_NARROW:
        values, k = policy.narrow(acc, "activation")
        return values, k, False
    g = weight_gradient(acc, m_u, policy)
    b = bitwidth(acc)
    if g is None:
        return np.zeros(acc.shape, np.int8), 0, True
    return g, narrowing_shift(b, m_u), False


def random_shape(p, rng, n):
    big = 100 * 30 <= p.tensor_buffer_words and n == 1
    m = 100 if big else int(rng.integers(1, 3 * p.rows + 4))
    cols = 30 if big else int(rng.integers(1, 3 * p.cols + 4))
    depth = int(rng.choice([1, int(rng.integers(1, p.rows + 1)), int(rng.integers(1, 40)),
                            int(rng.integers(1, 130))]))
    return m, cols, depth


def random_walk(rng, n: int) -> TileWalk:
    """Row-major for even tensors; else bands of 0 (all) to 3 tile rows cut into blocks of 1 to 3
    tile columns (0: all, now and then)."""
    if n % 2 == 0:
        return ROW_MAJOR
    return TileWalk(int(rng.integers(0, 4)), int(rng.choice([0, 1, 2, 3])))


async def check(dut, host, policy, rng, board, budget, p, min_tensors=1, first=0):
    """Random tensors until `budget` values were compared (and at least `min_tensors`); messages
    number them from `first`."""
    results, n = [], first
    while board.values < budget or n - first < min_tensors:
        m, cols, depth = random_shape(p, rng, n)
        kind = KINDS[n % len(KINDS)]
        a, b = int8_matrix(rng, (m, depth), kind), int8_matrix(rng, (depth, cols), kind)
        rule = RULE_GRADIENT if n % 3 == 2 else RULE_NARROW
        m_u = int(rng.integers(1, 9)) if rule == RULE_GRADIENT else INT8_BITS
        walk = random_walk(rng, n)
        got = await host.gemm(a, b, rule, m_u, walk)
        acc = int8_matmul(a.astype(np.int8), b.astype(np.int8))
        values, k, no_update = golden(acc, rule, m_u, policy)
        what = (f"tensor {n} ({m}x{cols}, K={depth}, tiles in bands of {walk.band} x blocks of "
                f"{walk.block}, {'gradient m_u=' + str(m_u) if rule else 'narrow'})")
        board.compare(f"k of {what}", got.k, k)
        board.compare(f"status of {what}", (int(got.status.b), int(got.status.k),
                      int(got.status.no_update), int(got.status.refused)),
                      (bitwidth(acc), k, int(no_update), 0))
        for row in range(m):  # each compared value counts once
            for col in range(cols):
                board.compare(f"value [{row}, {col}] of {what}", int(got.values[row, col]),
                              int(values[row, col]))
        results.append((m, cols, depth, got, walk))
        board.vectors += -(-m * cols // p.lanes)  # output beats, each compared whole
        n += 1
    return results


@cocotb.test(**BENCH_TIMEOUT)
async def random_tensors(dut):
    """Random shapes, modes of k, gaps and backpressure; every value against golden."""
    p = bench_params()
    dut.cfg__valid.value = 0
    await start(dut)
    rng = np.random.default_rng(bench_int("NITI_HW_SEED", 1))
    host = TensorHost(dut, p, rng, gap=0.3, stall=0.3)
    board = Scoreboard(f"datapath {p.name} {p.round_mode}", dut._log)
    results = await check(dut, host, golden_policy(p), rng, board,
                          bench_int("NITI_HW_VECTORS", 3000), p)
    board.report()
    blocked = sum(walk != ROW_MAJOR for *_, walk in results)
    assert blocked > 0, "datapath: no tensor came in a blocked tile order"
    record({"values": board.values, "vectors": board.vectors, "tensors": len(results),
            "blocked_walks": blocked})


@cocotb.test(**BENCH_TIMEOUT)
async def cycles_and_refusal(dut):
    """No gaps, no backpressure: cfg-to-operand and operand-to-last-beat cycles equal the model for
    random shapes; then a tensor above the scratchpad is refused and takes no operand."""
    p = bench_params()
    dut.cfg__valid.value = 0
    await start(dut)
    rng = np.random.default_rng(bench_int("NITI_HW_SEED", 1) + 7)
    host = TensorHost(dut, p, rng)
    board = Scoreboard(f"datapath {p.name} {p.round_mode} timing", dut._log)
    policy = golden_policy(p)  # one for the whole test: the unit's LFSR states persist
    results = await check(dut, host, policy, rng, board, 600, p, min_tensors=4)
    for m, cols, depth, got, walk in results:
        shape = f"{m}x{cols}, K={depth}, {walk}"
        assert got.first_operand_at - got.cfg_at == TENSOR_CONFIG_CYCLES, \
            f"cfg to first operand {got.first_operand_at - got.cfg_at} cycles for {shape}, model " \
            f"{TENSOR_CONFIG_CYCLES}"
        measured = got.last_out_at - got.first_operand_at + 1
        assert measured == tensor_gemm_cycles(m, cols, depth, p), \
            f"{shape}: {measured} cycles, model tensor_gemm_cycles {tensor_gemm_cycles(m, cols, depth, p)}"
    # Refusal: one element more than the scratchpad holds.
    words = p.tensor_buffer_words
    await host.configure(words + 1, 1, RULE_NARROW, INT8_BITS)
    dut.i__valid.value = 1
    for _ in range(2 * TENSOR_CONFIG_CYCLES + 10):
        await ReadOnly()
        assert not int(dut.i__ready.value), "datapath: took an operand of a refused tensor"
        await RisingEdge(dut.clk)
    dut.i__valid.value = 0
    assert int(host.status().refused) == 1, "datapath: a tensor above the scratchpad was not refused"
    # ... and the unit goes on with the next tensor, its LFSRs untouched by the refused one.
    await check(dut, host, policy, rng, board, board.values + 50, p, first=len(results) + 1)
    assert int(host.status().refused) == 0
    record({"timed_tensors": len(results), "values": board.values, "vectors": board.vectors})
