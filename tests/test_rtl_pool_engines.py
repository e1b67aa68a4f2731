"""Fast tier: the core's geometry engines (POOL, POOL_BACKWARD, COL2IM) in `amaranth.sim`.

The address generators against `niti_hw.program.addressing`'s statement of their walks (and those
statements against golden); each opcode on `Core` against `niti_hw.program.machine.Machine`
after every instruction (banks and exponents), cycles equal to `niti_hw.perf.timing`; the
sequencer's refusals of what these engines cannot run as the machine does.
"""

from __future__ import annotations

import functools
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from niti_hw.golden import MaxPool2d, col2im
from niti_hw.models import Conv, Fc, Flat, ModelSpec, Pool, Relu
from niti_hw.params import HardwareParams
from niti_hw.perf.timing import GATHER_WALK_LATENCY, WINDOW_WALK_LATENCY, program_cycles
from niti_hw.program.addressing import PADDING, gather_walk, pool_walk
from niti_hw.program.compiler import compile_step, program_params
from niti_hw.program.isa import GEOMETRY_FIELDS, Bank, Geometry, Instruction, Opcode

pytest.importorskip("amaranth", reason="needs the rtl extra: pip install 'niti-hw[rtl]'")

from amaranth.sim import Simulator  # noqa: E402
from test_rtl_core import P, assert_cycles, run_against_machine  # noqa: E402

from niti_hw.rtl.banks import word_bits  # noqa: E402
from niti_hw.rtl.instruction import Refusal  # noqa: E402
from niti_hw.rtl.walks import GatherWalk, WindowWalk  # noqa: E402

CONV, POOL_GEOMETRY = Opcode.CONV_GEOMETRY, Opcode.POOL_GEOMETRY
MODES = ["pseudo"] * 4


def geometry(opcode, batch, height, width, channels, kernel_h, kernel_w, stride, padding):
    """A geometry with golden's output size."""
    return Geometry(opcode, batch, height, width, channels, kernel_h, kernel_w, stride, padding,
                    (height + 2 * padding - kernel_h) // stride + 1,
                    (width + 2 * padding - kernel_w) // stride + 1)


@st.composite
def geometries(draw, pool: bool, most: int = 8, words: int | None = None):
    """A convolution's (any kernel, stride, padding) or a pool's (square kernel, no padding)
    geometry with inputs up to `most` wide; with `words`, its tensors fit that many words."""
    kernel_h = draw(st.integers(1, 4))
    kernel_w = kernel_h if pool else draw(st.integers(1, 4))
    stride = draw(st.integers(1, 3))
    padding = 0 if pool else draw(st.integers(0, 2))
    lowest_h, lowest_w = max(1, kernel_h - 2 * padding), max(1, kernel_w - 2 * padding)
    height = draw(st.integers(lowest_h, max(lowest_h, most)))
    width = draw(st.integers(lowest_w, max(lowest_w, most)))
    g = geometry(POOL_GEOMETRY if pool else CONV, draw(st.integers(1, 2)), height, width,
                 draw(st.integers(1, 3)), kernel_h, kernel_w, stride, padding)
    if words is not None:
        inputs = g.batch * g.height * g.width * g.channels
        columns = g.windows * (g.channels if pool else g.depth)
        if inputs + columns > words:  # smaller inputs, or another draw
            assume(most > 1)
            return draw(geometries(pool, most // 2, words))
    return g


# ---------------------------------------------------------------------------------------------
# The walks, stated in Python, against golden.
# ---------------------------------------------------------------------------------------------

def gathered(addresses, values):
    """Each row's candidates summed (PADDING reads nothing)."""
    picked = values[np.maximum(addresses, 0)].astype(np.int64)
    return np.where(addresses == PADDING, 0, picked).sum(axis=1)


@settings(max_examples=60, deadline=None)
@given(geometries(pool=False), st.integers(0, 2**32 - 1))
def test_gather_walk_sums_to_golden_col2im(g, seed):
    cols = np.random.default_rng(seed).integers(-2**20, 2**20, (g.windows, g.depth), np.int32)
    addresses, _ = gather_walk(g, columns=True)
    want = col2im(cols, g.input_shape, (g.kernel_h, g.kernel_w), g.stride, g.padding)
    assert np.array_equal(gathered(addresses, cols.ravel()), want.ravel())


@settings(max_examples=60, deadline=None)
@given(geometries(pool=True), st.integers(0, 2**32 - 1))
def test_pool_walks_give_golden_pool_and_route(g, seed):
    """max / first argmax over `pool_walk`; the errors of `gather_walk`'s candidates whose
    winner is the word, summed and saturated."""
    rng = np.random.default_rng(seed)
    x = rng.integers(-2, 3, g.input_shape).astype(np.int8)  # ties everywhere
    pool = MaxPool2d(g.kernel_h, g.stride)
    best, winner = pool.pool(x)
    window = x.ravel()[pool_walk(g)]
    assert np.array_equal(window.max(axis=1), best.ravel())
    assert np.array_equal(window.argmax(axis=1), winner.ravel())
    e = rng.integers(-127, 128, best.shape).astype(np.int8)
    addresses, offsets = gather_walk(g, columns=False)
    routed = np.where(winner.ravel()[np.maximum(addresses, 0)] == offsets, addresses, PADDING)
    assert np.array_equal(np.clip(gathered(routed, e.ravel()), -127, 127),
                          pool.route(e, winner, g.input_shape).ravel())


# ---------------------------------------------------------------------------------------------
# The address generators against the walks.
# ---------------------------------------------------------------------------------------------

class WalkBench:
    """One walk in one simulation, reset for every geometry."""

    def __init__(self, walk):
        self.walk = walk
        self.sim = Simulator(walk)
        self.sim.add_clock(1e-8)
        self.sim.add_testbench(self._testbench)
        self.g, self.columns, self.used, self.seen = None, 0, False, None

    async def _testbench(self, ctx):
        if self.g is None:
            return
        walk, fields = self.walk, self.walk.o.shape().members
        for name, _ in GEOMETRY_FIELDS[1:]:
            ctx.set(walk.geometry[name], getattr(self.g, name))
        if "columns" in walk.signature.members:
            ctx.set(walk.columns, self.columns)
        ctx.set(walk.start, 1)
        await ctx.tick()
        ctx.set(walk.start, 0)
        self.seen, cycle, final = [], 1, None  # cycle 1: the counters hold element 0
        while final is None or cycle < final + 4:  # and a few cycles past the final element
            await ctx.tick()
            cycle += 1
            assert cycle < 20_000, "no final element"
            if ctx.get(walk.o.valid):
                self.seen.append((cycle, {name: ctx.get(walk.o[name]) for name in fields}))
                if ctx.get(walk.o.final):
                    final = cycle

    def run(self, g: Geometry, columns: int = 0) -> list:
        """(cycle after start, element) of every valid element."""
        self.g, self.columns = g, columns
        if self.used:
            self.sim.reset()
        self.used = True
        self.sim.run()
        return self.seen


@functools.cache
def walk_bench(kind: str) -> WalkBench:
    bits = word_bits(P)  # the core's: an address in its largest bank
    return WalkBench(WindowWalk(bits) if kind == "window" else GatherWalk(bits))


def check_stream(seen, latency: int, addresses, offsets=None) -> None:
    """One element a cycle from `latency` + 1 cycles after start, none after the final one;
    addresses (PADDING where not inside), group flags and offsets as the statement's rows."""
    groups, size = addresses.shape
    assert [cycle for cycle, _ in seen] == list(range(1 + latency, 1 + latency + addresses.size))
    elements = [element for _, element in seen]
    got = np.array([e["addr"] if e["inside"] else PADDING for e in elements])
    assert np.array_equal(got, addresses.ravel())
    position = np.arange(addresses.size) % size
    assert [e["first"] for e in elements] == (position == 0).tolist()
    assert [e["last"] for e in elements] == (position == size - 1).tolist()
    assert [e["final"] for e in elements] == [0] * (addresses.size - 1) + [1]
    if offsets is not None:
        inside = addresses.ravel() != PADDING
        assert np.array_equal(np.array([e["offset"] for e in elements])[inside],
                              offsets.ravel()[inside])


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(geometries(pool=False, most=6))
def test_window_walk_is_pool_walk(g):
    """Any kernel, stride and padding (the zero border not `inside`)."""
    check_stream(walk_bench("window").run(g), WINDOW_WALK_LATENCY, pool_walk(g))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(geometries(pool=False, most=6), st.booleans())
def test_gather_walk_is_gather_walk(g, columns):
    """Candidates out of range (no such window, or one that does not cover the word) not
    `inside`; column or pooled addresses; offsets where inside."""
    check_stream(walk_bench("gather").run(g, int(columns)), GATHER_WALK_LATENCY,
                 *gather_walk(g, columns))


# ---------------------------------------------------------------------------------------------
# The engines on the core against the machine.
# ---------------------------------------------------------------------------------------------

def run(items, seed: int, edit=None, p: HardwareParams = P) -> dict:
    """`items` and END on a core and a machine from random banks (`edit`ed), compared after
    every instruction; it must finish, in the formulas' cycles."""
    items = list(items) + [Instruction(Opcode.END)]
    record = run_against_machine(items, seed, 3, MODES, edit, p=p)
    assert record["done"] and not record["error"], Refusal(record["cause"])
    assert record["pc"] == len(items) - 1
    assert_cycles(record, items, p)
    return record


def pool(g: Geometry, a=(Bank.ACT, 0), dst=(Bank.ACT, 512), aux=(Bank.ERR, 512), exps=(3, 4)):
    return Instruction(Opcode.POOL, a_bank=a[0], a_base=a[1], dst_bank=dst[0], dst_base=dst[1],
                       aux_bank=aux[0], aux_base=aux[1],
                       m=g.batch * g.height * g.width * g.channels, a_exp=exps[0],
                       dst_exp=exps[1])


def pool_backward(g: Geometry, a=(Bank.ACT, 512), b=(Bank.ERR, 512), dst=(Bank.ERR, 0),
                  exps=(4, 5)):
    return Instruction(Opcode.POOL_BACKWARD, a_bank=a[0], a_base=a[1], b_bank=b[0], b_base=b[1],
                       dst_bank=dst[0], dst_base=dst[1],
                       m=g.batch * g.height * g.width * g.channels, a_exp=exps[0],
                       dst_exp=exps[1])


def col2im_op(g: Geometry, a=0, dst=None, exps=(6, 7)):
    dst = -(-(a + g.windows * g.depth) // P.lanes) * P.lanes if dst is None else dst
    return Instruction(Opcode.COL2IM, a_bank=Bank.ACC, a_base=a, dst_bank=Bank.ACC, dst_base=dst,
                       m=g.windows, n=g.depth, a_exp=exps[0], dst_exp=exps[1])


def small_values(contents) -> None:
    """Activations and errors in -2..2: ties in most windows."""
    for bank in (Bank.ACT, Bank.ERR):
        contents[bank][:] = np.resize([0, 2, -1, 2, 1, -2, 2, 0, 1], contents[bank].size)


POOLS = [  # (geometry, what it covers)
    geometry(POOL_GEOMETRY, 2, 4, 4, 3, 2, 2, 2, 0),  # 2x2 stride 2: windows tile the input
    geometry(POOL_GEOMETRY, 1, 5, 6, 2, 3, 3, 2, 0),  # overlapping: 3x3 stride 2
    geometry(POOL_GEOMETRY, 1, 5, 5, 3, 3, 3, 1, 0),  # overlapping: 3x3 stride 1
    geometry(POOL_GEOMETRY, 2, 7, 5, 1, 2, 2, 3, 0),  # stride above kernel: inputs no window has
    geometry(POOL_GEOMETRY, 1, 3, 3, 5, 1, 1, 1, 0),  # kernel 1
    geometry(POOL_GEOMETRY, 1, 8, 8, 1, 8, 8, 8, 0),  # the largest kernel
]


@pytest.mark.parametrize("g", POOLS, ids=lambda g: f"k{g.kernel_h}s{g.stride}")
@pytest.mark.parametrize("values", ["ties", "random"])
def test_pool_then_its_backward_run_as_the_machine(g, values):
    """POOL's values and winners (the first largest: ties), then POOL_BACKWARD on errors in the
    pooled values' place and those winners; partial last rows (odd word counts)."""
    run([g, pool(g), pool_backward(g)], 21, small_values if values == "ties" else None)


def one_winner(contents) -> None:
    """Every input 0 but one 127 per channel in the middle: the overlapping windows all pick it,
    their errors (all 100) add past 127 and saturate."""
    act = contents[Bank.ACT]
    act[:256] = 0
    act[(2 * 5 + 2) * 2:(2 * 5 + 2) * 2 + 2] = 127
    contents[Bank.ERR][600:700] = 100


def test_overlapping_windows_that_share_a_winner_saturate_the_sum():
    g = geometry(POOL_GEOMETRY, 1, 5, 5, 2, 3, 3, 1, 0)
    record = run([g, pool(g), pool_backward(g, a=(Bank.ERR, 600))], 4, one_winner)
    err = record["machine"].banks[Bank.ERR]
    assert err[(2 * 5 + 2) * 2] == 127 and err[(2 * 5 + 2) * 2 + 1] == 127


def random_winners(contents) -> None:
    """Winners anywhere in 0..8 (some never a window's) and beyond (none)."""
    contents[Bank.ERR][512:700] = np.resize([0, 4, 8, 3, 9, 63, -1, 2, 5, 7, 1, 6], 188)


@pytest.mark.parametrize("g", POOLS[:3], ids=lambda g: f"k{g.kernel_h}s{g.stride}")
def test_pool_backward_on_any_winners(g):
    """Errors from the ERR bank, winners no POOL wrote (the machine's route takes them as they
    are), the result in the int32 bank and the ACT bank."""
    run([g, pool_backward(g, a=(Bank.ERR, 800), dst=(Bank.ACC, 0)),
         pool_backward(g, a=(Bank.ERR, 800), dst=(Bank.ACT, 4))], 8, random_winners)


CONVS = [
    geometry(CONV, 1, 4, 4, 1, 3, 3, 1, 1),  # 3x3 padding 1: borders gather fewer windows
    geometry(CONV, 1, 5, 4, 2, 3, 3, 2, 1),  # stride 2 with padding
    geometry(CONV, 2, 3, 3, 1, 2, 2, 1, 0),  # batch 2
    geometry(CONV, 1, 5, 5, 1, 3, 2, 2, 2),  # a 3x2 kernel, padding 2 (windows in the border)
    geometry(CONV, 1, 4, 3, 3, 1, 1, 2, 0),  # 1x1 stride 2: some inputs in no window
    geometry(CONV, 1, 2, 2, 3, 4, 4, 3, 1),  # one window larger than the image
]


@pytest.mark.parametrize("g", CONVS, ids=lambda g: f"k{g.kernel_h}x{g.kernel_w}s{g.stride}"
                                                 f"p{g.padding}")
def test_col2im_runs_as_the_machine(g):
    run([g, col2im_op(g)], 13)


def near_limits(contents) -> None:
    """Columns of +-(2**31 - k): their sums wrap past int32 as golden's int32 adds do."""
    acc = contents[Bank.ACC]
    acc[:128] = np.resize([2**31 - 1, 2**31 - 5, -2**31, -2**31 + 3, 1 << 30], 128)


def test_col2im_sums_wrap_as_int32():
    g = geometry(CONV, 1, 3, 3, 1, 3, 3, 1, 1)
    record = run([g, col2im_op(g)], 2, near_limits)
    cols = record["machine"].banks[Bank.ACC]
    dst = col2im_op(g).dst_base
    exact = gathered(gather_walk(g, True)[0], cols[:g.windows * g.depth].astype(np.int64))
    assert (exact != cols[dst:dst + exact.size]).any()  # some sums wrapped


def test_a_program_of_all_three_under_changing_geometries():
    """Geometry registers changed between instructions; each engine uses the one in force."""
    gp, gc = POOLS[1], CONVS[1]
    run([gp, pool(gp), gc, col2im_op(gc), POOLS[0], pool(POOLS[0], dst=(Bank.WEIGHT, 8)),
         pool_backward(POOLS[0], a=(Bank.WEIGHT, 8)), col2im_op(gc, a=64, dst=0)], 5)


@st.composite
def programs(draw):
    """A pool or conv geometry and one of its instructions, operands placed clear of each
    other at random rows."""
    opcode = draw(st.sampled_from([Opcode.POOL, Opcode.POOL_BACKWARD, Opcode.COL2IM]))
    L = P.lanes
    if opcode == Opcode.COL2IM:
        g = draw(geometries(pool=False, most=5, words=256 - 2 * L))
        columns, image = (-(-g.windows * g.depth // L),
                          -(-g.batch * g.height * g.width * g.channels // L))
        spare = 256 // L - columns - image
        before = draw(st.integers(0, spare))
        between = draw(st.integers(0, spare - before))
        if draw(st.booleans()):  # columns first
            return [g, col2im_op(g, before * L, (before + columns + between) * L)]
        return [g, col2im_op(g, (before + image + between) * L, before * L)]
    g = draw(geometries(pool=True, most=7, words=480))
    int8 = [Bank.ACT, Bank.ERR, Bank.WEIGHT]

    def place(banks, base):  # the int32 bank's 256 words: from 0
        bank = draw(st.sampled_from(banks))
        return bank, 0 if bank == Bank.ACC else base

    if opcode == Opcode.POOL:
        dst = place(list(Bank), 512)
        return [g, pool(g, place(int8, 0), dst, place([b for b in Bank if b != dst[0]], 768))]
    image = g.batch * g.height * g.width * g.channels
    dst = place(list(Bank) if image <= 256 else int8, 0)
    b = place([bank for bank in Bank if bank != Bank.ACC or dst[0] != Bank.ACC], 768)
    return [g, pool_backward(g, place(int8, 512), b, dst)]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(programs(), st.integers(0, 2**32 - 1))
def test_random_geometries_run_as_the_machine(items, seed):
    run(items, seed)


def test_the_compilers_pooling_and_col2im_instructions_run():
    """A compiled small CNN step's geometries, POOLs, POOL_BACKWARDs and COL2IMs (the others
    left out) pass the checks and run as the machine runs them."""
    model = ModelSpec("tiny", (Conv(2, 3, padding=1), Relu(), Pool(2), Conv(2, 3, padding=1),
                               Relu(), Pool(2, 1), Flat(), Fc(3)), (6, 6, 1), ((0, 3),))
    program = compile_step(model, (1, 6, 6), 1, P, classes=3, fit=True)
    wanted = (Opcode.POOL, Opcode.POOL_BACKWARD, Opcode.COL2IM, CONV, POOL_GEOMETRY)
    items = [item for item in program.instructions if item.opcode in wanted]
    assert {item.opcode for item in items} == set(wanted)
    run(items, 17, p=program_params(program, P))


# ---------------------------------------------------------------------------------------------
# Refusals.
# ---------------------------------------------------------------------------------------------

def refused(g, item) -> Refusal:
    """`g` then `item`: the run must stop at `item` (pc 1) with error, nothing of it done."""
    items = [g, item, Instruction(Opcode.END)]
    record = run_against_machine(items, 5, 3, MODES)
    assert record["error"] and not record["done"] and not record["busy"]
    assert record["pc"] == 1 and len(record["retired"]) == 1
    assert record["cycles"] == program_cycles([g, Instruction(Opcode.END)], P)
    return Refusal(record["cause"])


GP, GC = POOLS[1], CONVS[1]
GP_IN = GP.batch * GP.height * GP.width * GP.channels


PADDED = geometry(POOL_GEOMETRY, 1, 3, 4, 2, 3, 3, 2, 1)
WIDE = geometry(POOL_GEOMETRY, 1, 9, 9, 1, 9, 9, 9, 0)


@pytest.mark.parametrize("g, item, cause", [
    (GC, replace(col2im_op(GC), a_bank=Bank.ERR), Refusal.BANKS),
    (GC, replace(col2im_op(GC), dst_bank=Bank.ACT), Refusal.BANKS),
    (GP, pool(GP, a=(Bank.ACC, 0)), Refusal.BANKS),
    (GP, pool(GP, dst=(Bank.ERR, 256), aux=(Bank.ERR, 512)), Refusal.BANKS),
    (GP, pool_backward(GP, a=(Bank.ACC, 0)), Refusal.BANKS),
    (GP, pool(GP, a=(Bank.ACT, 2)), Refusal.PLACE),  # not a row
    (GP, pool(GP, a=(Bank.ACT, 968)), Refusal.PLACE),  # 60 input words
    (GP, pool(GP, dst=(Bank.ACC, 252)), Refusal.PLACE),  # 8 pooled words
    (GP, pool(GP, aux=(Bank.WEIGHT, 1020)), Refusal.PLACE),
    (GP, pool_backward(GP, a=(Bank.ACT, 1020)), Refusal.PLACE),
    (GP, pool_backward(GP, b=(Bank.ERR, 1020)), Refusal.PLACE),
    (GP, pool_backward(GP, dst=(Bank.ACC, 200)), Refusal.PLACE),
    (GC, col2im_op(GC, a=152, dst=0), Refusal.PLACE),  # 108 column words
    (GC, col2im_op(GC, dst=220), Refusal.PLACE),  # 40 input words
    (GP, pool(GP, dst=(Bank.ACT, 56)), Refusal.PLACE),  # values over the input's last row
    (GP, pool(GP, dst=(Bank.ERR, 512), aux=(Bank.ACT, 48)), Refusal.PLACE),  # winners too
    (GP, pool_backward(GP, dst=(Bank.ERR, 500)), Refusal.PLACE),  # result over the winners
    (GP, pool_backward(GP, dst=(Bank.ACT, 460)), Refusal.PLACE),  # over the errors
    (GC, col2im_op(GC, a=0, dst=104), Refusal.PLACE),  # result over the columns' last row
    (GP, replace(pool(GP), m=GP_IN - 1), Refusal.SETTING),
    (GC, replace(col2im_op(GC), m=GC.windows + 1), Refusal.SETTING),
    (GC, replace(col2im_op(GC), n=GC.depth - 1), Refusal.SETTING),
    (WIDE, pool(WIDE), Refusal.SETTING),  # a kernel above MaxPool's 8
    (geometry(POOL_GEOMETRY, 1, 5, 6, 2, 3, 2, 2, 0), pool(GP), Refusal.SETTING),  # 3x2
    (PADDED, pool(PADDED), Refusal.SETTING),  # golden's pool has no padding
    (replace(GP, out_height=GP.out_height - 1), pool(GP), Refusal.SETTING),  # not golden's
    (replace(GC, out_width=GC.out_width + 1), col2im_op(GC, dst=200), Refusal.SETTING),
    (replace(GC, stride=0), col2im_op(GC), Refusal.SETTING),
    (replace(GP, channels=0), pool_backward(GP), Refusal.SETTING),
    (GP, col2im_op(GC), Refusal.SETTING),  # no convolution geometry yet
])
def test_what_the_engines_cannot_run_as_the_machine_stops_the_run(g, item, cause):
    assert refused(g, item) == cause
