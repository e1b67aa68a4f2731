"""Fast tier: the GEMM engine in `amaranth.sim`: its operand walks against
`niti_hw.program.addressing`, and GEMMs on the core against the reference machine (every layout,
partial tiles, im2col with stride and padding, compiled training steps), cycles equal to
`niti_hw.perf.timing.gemm_engine_cycles`, and the GEMMs the core refuses.
"""

from __future__ import annotations

import functools
from math import ceil

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from niti_hw.golden import QTensor
from niti_hw.models import Conv, Fc, Flat, ModelSpec, Pool, Relu, get_model
from niti_hw.params import HardwareParams
from niti_hw.perf.timing import (GEMM_ADDRESS_LATENCY, engine_cycles, gemm_beat_slots,
                                 gemm_engine_cycles, gemm_tile_period, program_cycles)
from niti_hw.program import host
from niti_hw.program.addressing import PADDING, im2col_indices
from niti_hw.program.compiler import compile_step, program_params
from niti_hw.program.isa import (EXPONENT_REGISTERS, KEEP_M_U, Bank, Geometry, Instruction,
                                 Layout, Opcode)
from niti_hw.program.memory import bank_words
from niti_hw.train.build import build_network

pytest.importorskip("amaranth", reason="needs the rtl extra: pip install 'niti-hw[rtl]'")

from amaranth.sim import Simulator  # noqa: E402
from test_rtl_core import (P, Bench, assert_cycles, machine_for,  # noqa: E402
                           program_words, run_against_machine)

from niti_hw.rtl.gemm_walk import OperandWalk  # noqa: E402
from niti_hw.rtl.instruction import Refusal  # noqa: E402

WIDE = HardwareParams(rows=2, cols=4, lanes=2, lfsr_lanes=4, ifmap_sram_kib=1, ofmap_sram_kib=1,
                      filter_sram_kib=1, tensor_buffer_words=256)
"""More columns than rows (A's beats have empty slots) and two lanes (a drained row covers up to
three bank rows)."""
TALL = WIDE.replace(rows=4, cols=2)
NARROW_ACC = P.replace(acc_bits=20)
"""max_k = 32: the accumulator bound the sequencer checks, and results sign-extended from 20
bits."""
PSEUDO = ["pseudo"] * 4


# --- operand walks -------------------------------------------------------------------------

def geometry(batch, height, width, channels, kernel_h, kernel_w, stride, padding) -> Geometry:
    return Geometry(Opcode.CONV_GEOMETRY, batch, height, width, channels, kernel_h, kernel_w,
                    stride, padding, (height + 2 * padding - kernel_h) // stride + 1,
                    (width + 2 * padding - kernel_w) // stride + 1)


def operand_indices(role: str, layout: Layout, m: int, n: int, k: int, g) -> np.ndarray:
    """Offset (or PADDING) of every element of A (m x k) or B (k x n), as the machine reads it."""
    if role == "b":
        idx = np.arange(k * n)
        return idx.reshape(k, n) if layout == Layout.ROWS else idx.reshape(n, k).T
    if layout in (Layout.IM2COL, Layout.IM2COL_TRANSPOSED):
        columns = im2col_indices(g)
        return columns if layout == Layout.IM2COL else columns.T
    idx = np.arange(m * k)
    return idx.reshape(m, k) if layout == Layout.ROWS else idx.reshape(k, m).T


def expected_walk(p: HardwareParams, role: str, layout: Layout, m: int, n: int, k: int, g):
    """Per tile (row tiles outer), K beats of `gemm_beat_slots` slots: offset or None (zero)."""
    indices = operand_indices(role, layout, m, n, k, g)
    width, own = (p.rows, m) if role == "a" else (p.cols, n)
    tiles = []
    for ti in range(ceil(m / p.rows)):
        for tj in range(ceil(n / p.cols)):
            first = ti * p.rows if role == "a" else tj * p.cols
            walk = []
            for kk in range(k):
                for t in range(gemm_beat_slots(p)):
                    i = first + t
                    value = None
                    if t < width and i < own:
                        value = indices[i, kk] if role == "a" else indices[kk, i]
                    walk.append(None if value == PADDING else value)
            tiles.append(walk)
    return tiles


@functools.cache
def walk_sim(p: HardwareParams, role: str):
    walk = OperandWalk(p, role)
    sim = Simulator(walk)
    sim.add_clock(1e-8)
    return walk, sim


def run_walk(p, role, layout, m, n, k, g, base, extra):
    """Start the walk; its elements by cycle after start (cycle 0)."""
    walk, sim = walk_sim(p, role)
    period = k * gemm_beat_slots(p) + extra
    tiles = ceil(m / p.rows) * ceil(n / p.cols)
    seen = {}

    async def bench(ctx):
        own, other = (m, n) if role == "a" else (n, m)
        for name, value in (("layout", layout), ("base", base), ("own", own), ("k", k),
                            ("other", other), ("period", period)):
            ctx.set(getattr(walk, name), int(value))
        for name in ("batch", "height", "width", "channels", "kernel_h", "kernel_w", "stride",
                     "padding", "out_height", "out_width"):
            ctx.set(walk.conv[name], getattr(g, name) if g is not None else 0)
        ctx.set(walk.start, 1)
        await ctx.tick()
        ctx.set(walk.start, 0)
        for cycle in range(1, GEMM_ADDRESS_LATENCY + tiles * period + 4):
            if ctx.get(walk.o.valid):
                seen[cycle] = (None if ctx.get(walk.o.zero) else ctx.get(walk.o.addr) - base,
                               ctx.get(walk.o.beat_last), ctx.get(walk.o.tile_last))
            await ctx.tick()

    sim.reset()
    sim.add_testbench(bench)
    sim.run()
    return seen, period


def check_walk(p, role, layout, m, n, k, g=None, base=0, extra=0):
    seen, period = run_walk(p, role, layout, m, n, k, g, base, extra)
    slots = gemm_beat_slots(p)
    want = {}
    for t, walk in enumerate(expected_walk(p, role, layout, m, n, k, g)):
        for e, value in enumerate(walk):
            want[GEMM_ADDRESS_LATENCY + t * period + e] = (
                None if value is None else int(value), int(e % slots == slots - 1),
                int(e == len(walk) - 1))
    assert seen == want


SHAPES = st.tuples(st.integers(1, 9), st.integers(1, 9), st.integers(1, 5))


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from([P, WIDE, TALL]), st.sampled_from(["a", "b"]),
       st.sampled_from([Layout.ROWS, Layout.TRANSPOSED]), SHAPES, st.integers(0, 300),
       st.integers(0, 3))
def test_strided_walks_read_each_element_once_in_the_array_order(p, role, layout, shape, base,
                                                                  extra):
    """Row-major and transposed A and B, partial tiles, K = 1, idle cycles between tiles."""
    m, n, k = shape
    check_walk(p, role, layout, m, n, k, base=base, extra=extra)


@st.composite
def conv_geometry(draw):
    kernel_h, kernel_w = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    padding, stride = draw(st.integers(0, 2)), draw(st.integers(1, 3))
    height = draw(st.integers(max(1, kernel_h - 2 * padding), 6))
    width = draw(st.integers(max(1, kernel_w - 2 * padding), 6))
    return geometry(draw(st.integers(1, 2)), height, width, draw(st.integers(1, 3)), kernel_h,
                    kernel_w, stride, padding)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from([P, WIDE, TALL]), conv_geometry(),
       st.sampled_from([Layout.IM2COL, Layout.IM2COL_TRANSPOSED]), st.integers(1, 6),
       st.integers(0, 100))
def test_im2col_walks_are_addressing_im2col_indices(p, g, layout, n, base):
    """Windows and depth of every geometry (stride, padding, kernel, channels), padding slots
    zero, as `im2col_indices` gives them (and its transpose for the weight gradient)."""
    m, k = (g.windows, g.depth) if layout == Layout.IM2COL else (g.depth, g.windows)
    check_walk(p, "a", layout, m, n, k, g, base=base)


def test_a_stride_two_padded_walk_by_hand():
    """A known answer: a 3x3 input, 2x2 kernel, stride 2, padding 1: window 0 is padding but for
    its last tap (input word 0)."""
    g = geometry(1, 3, 3, 1, 2, 2, 2, 1)
    assert (g.out_height, g.out_width) == (2, 2)
    tiles = expected_walk(P, "a", Layout.IM2COL, 4, 1, 4, g)
    assert [tiles[0][kk * 4] for kk in range(4)] == [None, None, None, 0]
    check_walk(P, "a", Layout.IM2COL, 4, 1, 4, g)


def test_walks_of_one_beat_tiles_back_to_back():
    """K = 1 and no idle cycle: the next tile's first index is captured in the cycle the walk
    moves to it (a walk that used the register there repeated a tile)."""
    check_walk(P, "a", Layout.ROWS, 9, 1, 1)
    check_walk(WIDE, "b", Layout.TRANSPOSED, 1, 9, 1)
    check_walk(P, "a", Layout.IM2COL, 9, 2, 1, geometry(1, 1, 1, 1, 1, 1, 1, 1))


# --- GEMMs on the core -----------------------------------------------------------------------

def gemm(m, n, k, a_layout=Layout.ROWS, b_layout=Layout.ROWS, a=(Bank.ACT, 0),
         b=(Bank.WEIGHT, 0), dst=(Bank.ACC, 0), exps=(1, 2, 3)) -> Instruction:
    return Instruction(Opcode.GEMM, a_layout=a_layout, b_layout=b_layout, a_bank=a[0],
                       a_base=a[1], b_bank=b[0], b_base=b[1], dst_bank=dst[0], dst_base=dst[1],
                       m=m, n=n, k=k, a_exp=exps[0], b_exp=exps[1], dst_exp=exps[2])


def run_gemms(items, seed=3, p=P):
    items = list(items) + [Instruction(Opcode.END)]
    record = run_against_machine(items, seed, 3, PSEUDO, p=p)
    assert record["done"] and not record["error"], Refusal(record["cause"])
    assert_cycles(record, items, p)
    return record


@pytest.mark.parametrize("a_layout, b_layout", [(a, b) for a in (Layout.ROWS, Layout.TRANSPOSED)
                                                for b in (Layout.ROWS, Layout.TRANSPOSED)])
def test_strided_gemms_are_the_machines(a_layout, b_layout):
    """Partial tiles (M, N not multiples of 4), K = 1, a single element, operands and result
    starting at any word (not a bank row)."""
    run_gemms([gemm(6, 7, 5, a_layout, b_layout, (Bank.ACT, 3), (Bank.ERR, 21), (Bank.ACC, 5)),
               gemm(9, 3, 1, a_layout, b_layout, (Bank.WEIGHT, 0), (Bank.ACT, 1),
                    (Bank.ACC, 130), (4, 4, 4)),
               gemm(1, 1, 2, a_layout, b_layout, (Bank.ERR, 1022), (Bank.ERR, 7),
                    (Bank.ACC, 255), (5, 1, 0))])


def test_im2col_gemms_with_stride_two_and_padding_are_the_machines():
    """Forward (IM2COL x weights) and weight gradient (IM2COL_TRANSPOSED x errors) of a stride-2,
    padding-1 convolution, a padding-2 one after it (the geometry register changes)."""
    g = geometry(2, 5, 4, 3, 3, 2, 2, 1)
    g2 = geometry(1, 3, 3, 2, 3, 3, 1, 2)
    run_gemms([g, gemm(g.windows, 5, g.depth, Layout.IM2COL, Layout.ROWS, (Bank.ACT, 1),
                       (Bank.WEIGHT, 9), (Bank.ACC, 2)),
               gemm(g.depth, 3, g.windows, Layout.IM2COL_TRANSPOSED, Layout.TRANSPOSED,
                    (Bank.ERR, 2), (Bank.ACT, 600), (Bank.ACC, 100), (7, 8, 9)),
               g2, gemm(g2.windows, 2, g2.depth, Layout.IM2COL, Layout.TRANSPOSED,
                        (Bank.WEIGHT, 13), (Bank.ERR, 40), (Bank.ACC, 9))])


@pytest.mark.parametrize("p", [WIDE, TALL], ids=["rows<cols", "rows>cols"])
def test_gemms_on_arrays_that_are_not_square(p):
    g = geometry(1, 4, 4, 2, 3, 3, 2, 1)
    run_gemms([gemm(5, 7, 3, Layout.TRANSPOSED, Layout.ROWS, (Bank.ACT, 1), (Bank.ERR, 3),
                    (Bank.ACC, 3)),
               g, gemm(g.windows, 3, g.depth, Layout.IM2COL, Layout.TRANSPOSED, (Bank.ERR, 0),
                       (Bank.WEIGHT, 5), (Bank.ACC, 101))], p=p)


def test_a_narrow_accumulator_reaches_max_k_and_sign_extends():
    """acc_bits = 20: K = max_k (32) runs exactly, results (negative too) widened to int32."""
    assert NARROW_ACC.max_k == 32
    run_gemms([gemm(5, 6, 32, a=(Bank.ACT, 0), b=(Bank.WEIGHT, 0), dst=(Bank.ACC, 1))],
              p=NARROW_ACC)


@st.composite
def random_gemm(draw, p: HardwareParams):
    words = bank_words(p)
    layout = draw(st.sampled_from(list(Layout)))
    n = draw(st.integers(1, 9))
    if layout in (Layout.IM2COL, Layout.IM2COL_TRANSPOSED):
        g = draw(conv_geometry())
        m, k = (g.windows, g.depth) if layout == Layout.IM2COL else (g.depth, g.windows)
        a_words = g.batch * g.height * g.width * g.channels
        prefix = [g]
    else:
        m, k = draw(st.integers(1, 9)), draw(st.integers(1, 9))
        a_words, prefix = m * k, []
    if m * n > words[Bank.ACC] or k * n > 1024:  # an im2col A keeps the geometry's shape
        n = 1
        if not prefix:
            m = 1
        assume(m <= words[Bank.ACC] and k <= 1024)
    int8 = st.sampled_from([Bank.ACT, Bank.ERR, Bank.WEIGHT])
    a_bank, b_bank = draw(int8), draw(int8)
    return prefix + [gemm(m, n, k, layout, draw(st.sampled_from([Layout.ROWS, Layout.TRANSPOSED])),
                          (a_bank, draw(st.integers(0, words[a_bank] - a_words))),
                          (b_bank, draw(st.integers(0, words[b_bank] - k * n))),
                          (Bank.ACC, draw(st.integers(0, words[Bank.ACC] - m * n))),
                          [draw(st.integers(0, EXPONENT_REGISTERS - 1)) for _ in range(3)])]


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_gemm(P), st.integers(0, 2**32 - 1))
def test_random_gemms_are_the_machines(items, seed):
    run_gemms(items, seed)


def test_gemm_cycles_formula_by_hand():
    """4x4 array, 4 lanes: beats of 4 slots, 2 bank rows per drained row; a 5 x 6 x 3 GEMM is
    4 tiles 12 cycles apart (gathering 3 beats)."""
    assert gemm_beat_slots(P) == 4 and gemm_tile_period(3, P) == 12
    assert gemm_tile_period(1, P) == 8  # writing back a tile is the longer
    # last beat: 3 * 12 + 5 (the walk's counters, 3 im2col stages, its address register)
    # + 12 - 1 + 3 + 1; row 0 after 4 + 5; 2 + 4 * 2 - 1 to the last write
    assert gemm_engine_cycles(5, 6, 3, P) == (3 * 12 + 20) + 9 + 9 + 2
    assert engine_cycles(gemm(5, 6, 3), P) == gemm_engine_cycles(5, 6, 3, P)


# --- refusals --------------------------------------------------------------------------------

def refused(prefix, item, p=P) -> Refusal:
    """`prefix` (geometry) runs, `item` stops the run with error at its pc, nothing of it runs."""
    items = list(prefix) + [item, gemm(4, 4, 4), Instruction(Opcode.END)]
    record = run_against_machine(items, 5, 3, PSEUDO, p=p)
    assert record["error"] and not record["done"] and not record["busy"]
    assert record["pc"] == len(prefix) and len(record["retired"]) == len(prefix)
    assert record["cycles"] == program_cycles(list(prefix) + [Instruction(Opcode.END)], p)
    return Refusal(record["cause"])


G = geometry(1, 5, 4, 3, 3, 2, 2, 1)
ACT_WORDS, ACC_WORDS = bank_words(P)[Bank.ACT], bank_words(P)[Bank.ACC]


@pytest.mark.parametrize("prefix, item, cause", [
    ((), gemm(4, 4, 4, a=(Bank.ACT, ACT_WORDS - 15)), Refusal.PLACE),
    ((), gemm(4, 4, 4, Layout.TRANSPOSED, a=(Bank.ACT, ACT_WORDS - 16)), None),
    ((), gemm(3, 5, 4, b=(Bank.WEIGHT, ACT_WORDS - 19)), Refusal.PLACE),
    ((), gemm(3, 5, 4, dst=(Bank.ACC, ACC_WORDS - 14)), Refusal.PLACE),
    ((G,), gemm(G.windows, 2, G.depth, Layout.IM2COL, a=(Bank.ACT, ACT_WORDS - 59)),
     Refusal.PLACE),
    ((G,), gemm(G.depth, 2, G.windows, Layout.IM2COL_TRANSPOSED, a=(Bank.ACT, ACT_WORDS - 60)),
     None),
    ((), gemm(4, 4, 4, dst=(Bank.ACT, 0)), Refusal.BANKS),
    ((), gemm(4, 4, 4, a=(Bank.ACC, 0), dst=(Bank.ACC, 64)), Refusal.BANKS),
    ((), gemm(4, 4, 4, b=(Bank.ACC, 0), dst=(Bank.ACC, 64)), Refusal.BANKS),
    ((), gemm(4, 4, 4, b_layout=Layout.IM2COL), Refusal.BANKS),
    ((), gemm(4, 4, 0), Refusal.SETTING),
    ((), gemm(0, 4, 4), Refusal.SETTING),
    ((), gemm(4, 0, 4), Refusal.SETTING),
    ((G,), gemm(G.windows - 1, 2, G.depth, Layout.IM2COL), Refusal.SETTING),
    ((G,), gemm(G.windows, 2, G.depth, Layout.IM2COL_TRANSPOSED), Refusal.SETTING),
    ((), gemm(G.windows, 2, G.depth, Layout.IM2COL), Refusal.SETTING),
])
def test_gemms_the_core_cannot_run_as_the_machine_stop_the_run(prefix, item, cause):
    """Operand extents past their banks (A m * k, or the im2col source; B k * n; dst m * n),
    operands in the int32 bank or a result outside it, empty dimensions, an im2col shape that
    is not the geometry's, no geometry at all. The one that fits exactly (None) runs."""
    assert (G.windows, G.depth) == (9, 18)
    if cause is None:
        run_gemms(list(prefix) + [item])
        return
    assert refused(prefix, item) == cause


def test_k_past_the_accumulator_is_refused():
    assert refused((), gemm(2, 2, NARROW_ACC.max_k + 1), NARROW_ACC) == Refusal.SETTING


# --- programs --------------------------------------------------------------------------------

CHAIN = [
    gemm(6, 5, 7, a=(Bank.ACT, 0), b=(Bank.WEIGHT, 0), dst=(Bank.ACC, 16), exps=(1, 2, 3)),
    Instruction(Opcode.BITWIDTH, a_bank=Bank.ACC, a_base=16, m=30),
    Instruction(Opcode.ROUND, a_bank=Bank.ACC, a_base=16, m=30, keep=7, dst_bank=Bank.ACT,
                dst_base=100, a_exp=3, dst_exp=4),
    Instruction(Opcode.RELU, a_bank=Bank.ACT, a_base=100, m=30, dst_bank=Bank.ACT, dst_base=100,
                aux_bank=Bank.ERR, aux_base=200, a_exp=4, dst_exp=4),
    gemm(7, 5, 6, Layout.TRANSPOSED, a=(Bank.ACT, 0), b=(Bank.ACT, 100), dst=(Bank.ACC, 64),
         exps=(1, 4, 5)),
    Instruction(Opcode.ROUND, a_bank=Bank.ACC, a_base=64, m=35, keep=KEEP_M_U, kind=2,
                dst_bank=Bank.ERR, dst_base=300),
    Instruction(Opcode.UPDATE, a_bank=Bank.ERR, a_base=300, m=35, dst_bank=Bank.WEIGHT,
                dst_base=0, n=8),
    gemm(6, 5, 7, a=(Bank.ACT, 0), b=(Bank.WEIGHT, 0), dst=(Bank.ACC, 16), exps=(1, 2, 3)),
]
"""A forward GEMM narrowed and rectified, a weight gradient from it, rounded at m_u, the weights
updated, the forward GEMM again on the new weights."""


def test_gemms_chain_with_the_other_engines_as_the_machine():
    record = run_gemms(CHAIN)
    assert record["machine"].banks[Bank.ERR][300:335].any()


TINY_LINEAR = ModelSpec("tiny-linear", (Flat(), Fc(5), Relu(), Fc(3)), (2, 2, 3), ())
TINY_CNN = ModelSpec("tiny-cnn", (Conv(3, 3, padding=1, stride=2), Relu(), Pool(2), Flat(),
                                  Fc(4)), (6, 6, 2), ())


STEPS = [(TINY_LINEAR, (3, 2, 2), 3, "pseudo"), (TINY_CNN, (2, 6, 6), 2, "pseudo"),
         (TINY_CNN, (2, 6, 6), 2, "stochastic"),
         pytest.param("small-cnn", (1, 10, 10), 1, "stochastic", marks=pytest.mark.slow)]


@pytest.mark.parametrize("spec, input_chw, batch, mode", STEPS,
                         ids=["linear", "cnn", "cnn-stochastic", "small-cnn"])
def test_a_compiled_training_step_runs_on_the_core_as_on_the_machine(spec, input_chw, batch,
                                                                      mode):
    """A whole compiled step (GEMMs forward, for the errors and the weight gradients, im2col
    windows, COL2IM, POOL and its backward, RELU and its backward, LOSS, BITWIDTH, ROUND,
    UPDATE) in one run of the core, no host between instructions: bit for bit the machine's
    banks, exponents and LFSR lanes after each instruction, each instruction in
    `instruction_cycles`."""
    spec = get_model(spec) if isinstance(spec, str) else spec
    program = compile_step(spec, input_chw, batch, P, fit=True)
    p, items = program_params(program, P), list(program.instructions)
    rng = np.random.default_rng(1)
    modes = [mode] * 4
    machine = machine_for(p, {}, np.zeros(EXPONENT_REGISTERS, int), 3, modes)
    c, h, w = input_chw
    net = build_network(spec, (h, w, c), spec.layers[-1].out_features, seed=2).net
    host.load(machine, program, net, QTensor(rng.integers(-127, 128, (batch, h, w, c))
                                             .astype(np.int8), -7),
              rng.integers(0, program.classes, batch))
    unit, record = Bench(p, len(program_words(items))), {}

    async def job(ctx):
        await unit.load(ctx, {bank: machine.banks[bank] for bank in Bank}, machine.exponents,
                        program_words(items))
        record.update(await unit.run(ctx, items, machine, 3, modes))
        record.update(done=ctx.get(unit.core.done), error=ctx.get(unit.core.error))

    unit.execute(job)
    assert record["done"] and not record["error"] and record["pc"] == len(items) - 1
    assert_cycles(record, items, p)
    ran = {item.opcode for item in items}
    assert {Opcode.GEMM, Opcode.LOSS, Opcode.UPDATE, Opcode.RELU_BACKWARD} <= ran
    print(spec.name, mode, "core cycles", record["cycles"])
