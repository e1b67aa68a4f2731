"""Fast tier: the core (sequencer, banks, engines) in `amaranth.sim` against the reference machine.

Random bank contents and random programs of the opcodes this core runs go to the RTL and to
`niti_hw.program.machine.Machine`; after every instruction the four banks, the exponent registers,
B, the geometry registers and the LFSR states must be equal, and the run's cycles must equal
`niti_hw.perf.timing`'s formulas.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from niti_hw.golden import RoundingPolicy
from niti_hw.golden.tensor import TENSOR_KINDS
from niti_hw.params import ROUND_MODES, HardwareParams
from niti_hw.perf.timing import BANK_READ_LATENCY, each_instruction_cycles, program_cycles
from niti_hw.program.isa import (EXPONENT_REGISTERS, GEOMETRY_FIELDS, KEEP_M_U, Bank, Geometry,
                                 Instruction, Opcode, encode)
from niti_hw.program.machine import Machine
from niti_hw.program.memory import bank_words

pytest.importorskip("amaranth", reason="needs the rtl extra: pip install 'niti-hw[rtl]'")

from amaranth.sim import Simulator  # noqa: E402

from niti_hw.rtl.core import Core  # noqa: E402
from niti_hw.rtl.instruction import Refusal  # noqa: E402

P = HardwareParams(rows=4, cols=4, lanes=4, lfsr_lanes=8, ifmap_sram_kib=1, ofmap_sram_kib=1,
                   filter_sram_kib=1, tensor_buffer_words=256)
PROGRAM_WORDS = 256
INT8_BANKS = (Bank.ACT, Bank.ERR, Bank.WEIGHT)
PATIENCE = 20_000


def pack(values, bits: int) -> int:
    return sum((int(v) & ((1 << bits) - 1)) << (n * bits) for n, v in enumerate(values))


def unpack(word: int, bits: int, lanes: int) -> list[int]:
    values = [(word >> (n * bits)) & ((1 << bits) - 1) for n in range(lanes)]
    return [v - (1 << bits) if v >> (bits - 1) else v for v in values]


class Bench:
    """One core in one simulation, reset for every job: load banks, exponents and a program, run
    it, and compare with a machine after every instruction (`check`)."""

    def __init__(self, p: HardwareParams = P, program_words: int = PROGRAM_WORDS,
                 weight_bits: int = 8):
        self.p = p
        self.core = Core(p, program_words, weight_bits)
        self.sim = Simulator(self.core)
        self.sim.add_clock(1e-8)
        self.sim.add_testbench(self._testbench)
        self.job, self.used = None, False

    async def _testbench(self, ctx):
        if self.job is not None:
            await self.job(ctx)

    def execute(self, job) -> None:
        """Run `job(ctx)` from the core's reset state (initial banks, registers and LFSRs)."""
        self.job = job
        if self.used:
            self.sim.reset()
        self.used = True
        self.sim.run()

    def banks(self, ctx) -> dict[Bank, np.ndarray]:
        """Every bank's values, read through the memories (no cycles pass)."""
        out = {}
        for bank, memory in self.core.banks.data.items():
            bits = self.core.banks.value_bits[bank]
            out[bank] = np.array([v for row in range(memory.depth)
                                  for v in unpack(ctx.get(memory[row]), bits, self.p.lanes)])
        return out

    def exponents(self, ctx) -> np.ndarray:
        values = []
        for index in range(EXPONENT_REGISTERS):
            ctx.set(self.core.exp_rd.index, index)
            values.append(ctx.get(self.core.exp_rd.value))
        return np.array(values)

    def lfsr_states(self, ctx) -> np.ndarray:
        """Every LFSR lane through the host's `lfsr_rd` port (no cycles pass)."""
        states = []
        for index in range(self.p.lfsr_lanes):
            ctx.set(self.core.lfsr_rd.index, index)
            states.append(ctx.get(self.core.lfsr_rd.state))
        return np.array(states, np.uint32)

    async def load(self, ctx, contents: dict, exponents, words: list[int],
                   host: bool = False) -> None:
        """Banks (through the memories, or with `host` through the host write port), exponent
        registers and the program (through their host ports)."""
        core, L = self.core, self.p.lanes
        for bank, values in contents.items():
            bits = self.core.banks.value_bits[bank]
            for row in range(len(values) // L):
                part = [int(v) for v in values[row * L:(row + 1) * L]]
                if not host:
                    ctx.set(core.banks.data[bank][row], pack(part, bits))
                    continue
                ctx.set(core.host_wr.en, 1)
                ctx.set(core.host_wr.bank, bank)
                ctx.set(core.host_wr.row, row)
                ctx.set(core.host_wr.mask, (1 << L) - 1)
                ctx.set(core.host_wr.data, part)
                await ctx.tick()
        ctx.set(core.host_wr.en, 0)
        for index, value in enumerate(exponents):
            ctx.set(core.exp_wr.en, 1)
            ctx.set(core.exp_wr.index, index)
            ctx.set(core.exp_wr.value, int(value))
            await ctx.tick()
        ctx.set(core.exp_wr.en, 0)
        for addr, word in enumerate(words):
            ctx.set(core.imem.en, 1)
            ctx.set(core.imem.addr, addr)
            ctx.set(core.imem.data, word)
            await ctx.tick()
        ctx.set(core.imem.en, 0)
        await ctx.tick().repeat(2)  # the banks' write register

    async def run(self, ctx, items, machine: Machine | None, m_u: int, modes) -> dict:
        """Start the program; compare with `machine` after every instruction it retires.
        Returns the cycles from start to done or error, and the retirement cycles."""
        core = self.core
        ctx.set(core.config.m_u, m_u)
        ctx.set(core.config.modes, [mode if isinstance(mode, int) else ROUND_MODES.index(mode)
                                    for mode in modes])
        ctx.set(core.start, 1)
        await ctx.tick()
        ctx.set(core.start, 0)
        cycles, pc, retired = 1, 0, []
        while not (ctx.get(core.done) or ctx.get(core.error)):
            await ctx.tick()
            cycles += 1
            assert cycles < PATIENCE, f"no done or error after {PATIENCE} cycles at pc {pc}"
            if ctx.get(core.pc) != pc:
                assert ctx.get(core.pc) == pc + 1
                retired.append(cycles)
                if machine is not None:
                    machine.execute(items[pc])
                    self.check(ctx, machine, f"after instruction {pc} ({items[pc].opcode.name})")
                pc += 1
        return {"cycles": cycles, "retired": retired, "pc": pc}

    def check(self, ctx, machine: Machine, where: str) -> None:
        got = self.banks(ctx)
        for bank in Bank:
            diff = np.flatnonzero(got[bank] != machine.banks[bank])
            assert diff.size == 0, (f"{where}: {bank.name} differs at words {diff[:8].tolist()}: "
                                    f"rtl {got[bank][diff[:8]].tolist()}, machine "
                                    f"{machine.banks[bank][diff[:8]].tolist()}")
        assert np.array_equal(self.exponents(ctx), machine.exponents), f"{where}: exponents"
        assert ctx.get(self.core.b) == machine.bitwidth, f"{where}: B register"
        assert np.array_equal(self.lfsr_states(ctx), machine.policy.lanes.states), \
            f"{where}: LFSR states"
        for opcode, port in ((Opcode.CONV_GEOMETRY, self.core.conv),
                             (Opcode.POOL_GEOMETRY, self.core.pool)):
            if opcode in machine.geometry:
                g = machine.geometry[opcode]
                assert [ctx.get(port[name]) for name, _ in GEOMETRY_FIELDS[1:]] == \
                    [getattr(g, name) for name, _ in GEOMETRY_FIELDS[1:]], f"{where}: {opcode.name}"


def random_banks(rng: np.random.Generator, p: HardwareParams) -> dict[Bank, np.ndarray]:
    """int8 banks in [-127, 127] (SPEC: -128 never appears) with zero stretches, so masks and
    errors have both; the int32 bank in stretches of random bit lengths (B from 0 to 32)."""
    words = bank_words(p)
    banks = {}
    for bank in INT8_BANKS:
        values = rng.integers(-127, 128, words[bank])
        values[rng.random(words[bank]) < 0.3] = 0
        banks[bank] = values
    acc = np.zeros(words[Bank.ACC], np.int64)
    start = 0
    while start < acc.size:
        length = min(int(rng.integers(1, 48)), acc.size - start)
        bits = int(rng.choice([0, 1, 3, 7, 8, 9, 12, 20, 31, 32]))
        low, high = -(1 << bits - 1) if bits else 0, (1 << bits - 1) if bits else 1
        acc[start:start + length] = rng.integers(max(low, -2**31), min(high, 2**31), length)
        start += length
    banks[Bank.ACC] = acc
    return banks


RUN_OPCODES = (Opcode.BITWIDTH, Opcode.ROUND, Opcode.RELU, Opcode.RELU_BACKWARD, Opcode.UPDATE,
               Opcode.GEMM)


@st.composite
def tensor(draw, p: HardwareParams, banks, m: int, avoid=()):
    """(bank, base) of an `m`-value tensor at a bank row, clear of the (bank, base, m) `avoid`."""
    words = bank_words(p)
    free = {bank: [base for base in range(0, words[bank] - m + 1, p.lanes)
                   if all(b != bank or base + m <= other or other + n <= base
                          for b, other, n in avoid)] for bank in banks}
    bank = draw(st.sampled_from([bank for bank in banks if free[bank]]))
    return bank, draw(st.sampled_from(free[bank]))


@st.composite
def instruction(draw, p: HardwareParams):
    """An instruction of the opcodes the core runs, valid for the machine: aligned bases inside
    their banks, a destination clear of its sources or exactly on one (in place). A RELU_BACKWARD's
    mask is clear of its errors: under an in-place result a mask at another offset would be
    overwritten before it is read, which the core refuses (the machine reads whole tensors first;
    `test_instructions_the_core_cannot_run_as_the_machine_stop_the_run`)."""
    opcode = draw(st.sampled_from(RUN_OPCODES * 3 + (Opcode.CONV_GEOMETRY, Opcode.POOL_GEOMETRY)))
    if opcode in (Opcode.CONV_GEOMETRY, Opcode.POOL_GEOMETRY):
        return Geometry(opcode, **{name: draw(st.integers(0, (1 << bits) - 1))
                                   for name, bits in GEOMETRY_FIELDS[1:]})
    m = draw(st.one_of(st.integers(0, 9), st.integers(0, 70)))
    exps = {name: draw(st.integers(0, EXPONENT_REGISTERS - 1))
            for name in ("a_exp", "b_exp", "dst_exp")}
    int8 = list(INT8_BANKS)
    if opcode == Opcode.GEMM:
        return gemm_instruction(draw, p, exps)
    if opcode in (Opcode.BITWIDTH, Opcode.ROUND):
        a = draw(tensor(p, [Bank.ACC] * 3 + int8, m))
        dst = draw(tensor(p, list(Bank), m, [(*a, m)]))
        keep = draw(st.one_of(st.sampled_from([KEEP_M_U, 7]), st.integers(1, 15)))
        return Instruction(opcode, a_bank=a[0], a_base=a[1], dst_bank=dst[0], dst_base=dst[1],
                           m=m, keep=keep, kind=draw(st.integers(0, len(TENSOR_KINDS) - 1)),
                           **exps)
    a = draw(tensor(p, int8, m))
    if opcode == Opcode.RELU:
        dst = a if draw(st.booleans()) else draw(tensor(p, list(Bank), m, [(*a, m)]))
        aux = draw(tensor(p, [b for b in Bank if b != dst[0]], m, [(*a, m), (*dst, m)]))
        return Instruction(opcode, a_bank=a[0], a_base=a[1], dst_bank=dst[0], dst_base=dst[1],
                           aux_bank=aux[0], aux_base=aux[1], m=m, **exps)
    if opcode == Opcode.RELU_BACKWARD:
        b = draw(tensor(p, list(Bank), m, [(*a, m)]))  # clear of a (see below)
        dst = a if draw(st.booleans()) else draw(tensor(p, list(Bank), m, [(*a, m), (*b, m)]))
        return Instruction(opcode, a_bank=a[0], a_base=a[1], b_bank=b[0], b_base=b[1],
                           dst_bank=dst[0], dst_base=dst[1], m=m, **exps)
    dst = draw(tensor(p, int8, m, [(*a, m)]))
    return Instruction(opcode, a_bank=a[0], a_base=a[1], dst_bank=dst[0], dst_base=dst[1], m=m,
                       n=8, **exps)


def gemm_instruction(draw, p: HardwareParams, exps: dict) -> Instruction:
    """A GEMM of small shape (partial tiles), row-major or transposed operands from any int8
    banks at any word, the result anywhere in the int32 bank."""
    m, n, k = (draw(st.integers(1, 6)) for _ in range(3))
    words = bank_words(p)
    a_bank, b_bank = (draw(st.sampled_from(INT8_BANKS)) for _ in range(2))
    return Instruction(Opcode.GEMM, a_layout=draw(st.integers(0, 1)),
                       b_layout=draw(st.integers(0, 1)), a_bank=a_bank,
                       a_base=draw(st.integers(0, words[a_bank] - m * k)), b_bank=b_bank,
                       b_base=draw(st.integers(0, words[b_bank] - k * n)), dst_bank=Bank.ACC,
                       dst_base=draw(st.integers(0, words[Bank.ACC] - m * n)), m=m, n=n, k=k,
                       **exps)


def program_words(items) -> list[int]:
    return [word for item in items for word in encode(item)]


@functools.cache
def bench(p: HardwareParams = P) -> Bench:
    """One elaborated core per parameters, shared by the tests (reset before every job)."""
    return Bench(p)


def machine_for(p: HardwareParams, contents: dict, exponents, m_u: int, modes) -> Machine:
    """A machine with the core's contents; a mode given as a code that is no mode (the core's
    refusal) stands in as pseudo: the machine never gets to round with it."""
    modes = [mode if isinstance(mode, str) else "pseudo" for mode in modes]
    machine = Machine(p, RoundingPolicy(*modes, seed=p.lfsr_seed, n_lanes=p.lfsr_lanes), m_u)
    for bank, values in contents.items():
        machine.banks[bank][:] = values
    machine.exponents[:] = exponents
    return machine


def run_against_machine(items, seed: int, m_u: int, modes, edit=None, words=None,
                        p: HardwareParams = P) -> dict:
    """Run `items` on a core and a machine from the same random banks and exponents (`edit`
    may change the banks first), comparing them after every instruction; `words` replaces the
    program's encoding. Returns the run record (`Bench.run`) with the core's outcome."""
    rng = np.random.default_rng(seed)
    contents = random_banks(rng, p)
    if edit is not None:
        edit(contents)
    exponents = rng.integers(-40, 41, EXPONENT_REGISTERS)
    machine = machine_for(p, contents, exponents, m_u, modes)
    unit, record = bench(p), {"machine": machine}

    async def job(ctx):
        core = unit.core
        await unit.load(ctx, contents, exponents, program_words(items) if words is None else words)
        unit.check(ctx, machine, "after loading")
        record.update(await unit.run(ctx, items, machine, m_u, modes))
        record.update(done=ctx.get(core.done), error=ctx.get(core.error),
                      cause=ctx.get(core.cause), busy=ctx.get(core.busy))
        unit.check(ctx, machine, "at the end")

    unit.execute(job)
    return record


def assert_cycles(record, items, p: HardwareParams = P) -> None:
    """Each retired instruction took `instruction_cycles` (under the geometry in force), the
    run `program_cycles`."""
    ends = [1] + record["retired"]
    assert [b - a for a, b in zip(ends, ends[1:])] == \
        each_instruction_cycles(items, p)[:len(record["retired"])]
    assert record["cycles"] == program_cycles(items, p)


MODES = st.lists(st.sampled_from(ROUND_MODES), min_size=len(TENSOR_KINDS),
                 max_size=len(TENSOR_KINDS))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(instruction(P), min_size=1, max_size=8), st.integers(0, 2**32 - 1),
       st.integers(1, 8), MODES)
def test_random_programs_run_as_the_machine_runs_them(items, seed, m_u, modes):
    """Banks, exponents, B, geometry and LFSR states equal after every instruction; cycles equal
    the formulas."""
    items = items + [Instruction(Opcode.END)]
    record = run_against_machine(items, seed, m_u, modes)
    assert record["done"] and not record["error"] and record["pc"] == len(items) - 1
    assert_cycles(record, items)


EVERY_OPCODE = [
    Geometry(Opcode.CONV_GEOMETRY, 8, 16, 16, 1, 3, 3, 1, 0, 14, 14),
    Instruction(Opcode.BITWIDTH, a_bank=Bank.ACC, a_base=48, m=13),
    Instruction(Opcode.ROUND, a_bank=Bank.ACC, a_base=48, m=13, keep=5, kind=0,
                dst_bank=Bank.ACT, dst_base=8, a_exp=1, dst_exp=2),
    Geometry(Opcode.POOL_GEOMETRY, 8, 14, 14, 8, 2, 2, 2, 0, 7, 7),
    Instruction(Opcode.ROUND, a_bank=Bank.ACC, a_base=96, m=30, keep=KEEP_M_U, kind=2,
                dst_bank=Bank.ERR, dst_base=4),
    Instruction(Opcode.RELU, a_bank=Bank.ACT, a_base=8, m=13, dst_bank=Bank.ACT, dst_base=100,
                aux_bank=Bank.ERR, aux_base=200, a_exp=2, dst_exp=3),
    Instruction(Opcode.RELU_BACKWARD, a_bank=Bank.ERR, a_base=4, b_bank=Bank.ERR, b_base=600,
                m=29, dst_bank=Bank.ERR, dst_base=300, a_exp=7, dst_exp=5),
    Instruction(Opcode.UPDATE, a_bank=Bank.ERR, a_base=300, m=29, dst_bank=Bank.WEIGHT,
                dst_base=40, n=8),
    Instruction(Opcode.RELU, a_bank=Bank.WEIGHT, a_base=40, m=16, dst_bank=Bank.WEIGHT,
                dst_base=40, aux_bank=Bank.ACC, aux_base=200, a_exp=3, dst_exp=3),
    Instruction(Opcode.BITWIDTH, a_bank=Bank.ERR, a_base=800, m=12),
    Instruction(Opcode.ROUND, a_bank=Bank.ERR, a_base=800, m=12, keep=4, kind=1,
                dst_bank=Bank.ACT, dst_base=500, a_exp=9, dst_exp=9),
    Instruction(Opcode.UPDATE, a_bank=Bank.ACT, a_base=500, m=8, dst_bank=Bank.WEIGHT,
                dst_base=120, n=8),
    Instruction(Opcode.END)]
"""Every opcode the core runs, as a compiled step chains them; partial and whole last rows,
int8 tensors rounded (negative values read back sign-extended)."""


@pytest.mark.parametrize("mode", ROUND_MODES)
def test_a_program_of_every_opcode_runs_as_the_machine_runs_it(mode):
    record = run_against_machine(EVERY_OPCODE, 11, 2, [mode] * len(TENSOR_KINDS))
    assert record["done"] and record["pc"] == len(EVERY_OPCODE) - 1
    assert_cycles(record, EVERY_OPCODE)


def gradient_regions(contents) -> None:
    """ACC words 0..12 zero (B = 0), 16..34 within m_u = 3 bits (B <= m_u), 40..62 wide; the
    words after each (in the tensors' last rows) as wide as int32 goes: a detector pass that
    read them would find another B."""
    acc = contents[Bank.ACC]
    acc[0:13] = 0
    acc[16:35] = np.resize([3, -7, 0, 5, -1], 19)
    acc[40:63] = np.resize([1 << 20, -(1 << 19) + 3, 12345, -99999, 7], 23)
    acc[[13, 14, 15, 35, 63]] = [-2**31, 2**31 - 1, 1 << 30, -2**31, 2**31 - 1]


@pytest.mark.parametrize("mode", ROUND_MODES)
def test_gradient_rounds_at_b_zero_within_m_u_and_above(mode):
    """KEEP_M_U: zeros at B = 0, saturation only at B <= m_u (no LFSR step), B - m_u above, in
    the gradient kind's mode whatever the instruction's kind; keep 7 with B from the B register;
    partial last rows; the exponent only for keep 7."""
    grad = dict(opcode=Opcode.ROUND, a_bank=Bank.ACC, keep=KEEP_M_U, dst_bank=Bank.ERR)
    items = [Instruction(**grad, a_base=0, m=13, dst_base=100, kind=2, a_exp=1, dst_exp=2),
             Instruction(**grad, a_base=16, m=19, dst_base=200, kind=2, a_exp=1, dst_exp=3),
             Instruction(**grad, a_base=40, m=23, dst_base=300, kind=0, a_exp=1, dst_exp=4),
             Instruction(Opcode.BITWIDTH, a_bank=Bank.ACC, a_base=40, m=23),
             Instruction(Opcode.ROUND, a_bank=Bank.ACC, a_base=40, m=23, keep=7, kind=0,
                         dst_bank=Bank.ACT, dst_base=8, a_exp=1, dst_exp=5),
             Instruction(Opcode.BITWIDTH, a_bank=Bank.ACC, a_base=0, m=13),
             Instruction(Opcode.ROUND, a_bank=Bank.ACC, a_base=40, m=23, keep=7, kind=1,
                         dst_bank=Bank.ACT, dst_base=48, a_exp=1, dst_exp=6),
             Instruction(Opcode.END)]
    others = [other for other in ROUND_MODES if other != mode]
    modes = [others[0], others[1], mode, others[0]]  # activation, error, gradient, loss
    record = run_against_machine(items, 7, 3, modes, gradient_regions)
    machine = record["machine"]
    assert record["done"] and machine.bitwidth == 0
    assert not machine.banks[Bank.ERR][100:113].any() and machine.banks[Bank.ERR][200:219].any()
    assert_cycles(record, items)


def test_host_ports_write_and_read_banks_and_exponents():
    """Rows written through `host_wr` (a masked one keeps its other lanes) read back through
    `host_rd` and the memories; exponents through `exp_wr` / `exp_rd`."""
    unit, L = bench(), P.lanes
    rng = np.random.default_rng(3)
    contents = random_banks(rng, P)
    exponents = rng.integers(-40, 41, EXPONENT_REGISTERS)

    async def job(ctx):
        core = unit.core
        await unit.load(ctx, contents, exponents, [], host=True)
        ctx.set(core.host_wr.en, 1)
        ctx.set(core.host_wr.bank, Bank.WEIGHT)
        ctx.set(core.host_wr.row, 5)
        ctx.set(core.host_wr.mask, 0b0101)
        ctx.set(core.host_wr.data, [11, 22, 33, 44])
        await ctx.tick()
        ctx.set(core.host_wr.en, 0)
        await ctx.tick().repeat(2)
        contents[Bank.WEIGHT][5 * L:6 * L:2] = [11, 33]
        machine = machine_for(P, contents, exponents, 3, ["pseudo"] * 4)
        unit.check(ctx, machine, "after host writes")
        reads = [(bank, row) for row in range(0, 64, 3) for bank in Bank]
        seen = []  # the data after each cycle's clock edge
        for cycle in range(len(reads) + BANK_READ_LATENCY):  # a read a cycle, bank after bank
            ctx.set(core.host_rd.en, cycle < len(reads))
            if cycle < len(reads):
                ctx.set(core.host_rd.bank, reads[cycle][0])
                ctx.set(core.host_rd.row, reads[cycle][1])
            await ctx.tick()
            seen.append([ctx.get(core.host_rd.data[n]) for n in range(L)])
        assert seen[BANK_READ_LATENCY - 1:][:len(reads)] == [
            contents[bank][row * L:(row + 1) * L].tolist() for bank, row in reads]

    unit.execute(job)


FIRST = [Instruction(Opcode.BITWIDTH, a_bank=Bank.ACC, a_base=16, m=30),
         Instruction(Opcode.ROUND, a_bank=Bank.ACC, a_base=16, m=30, keep=7, dst_bank=Bank.ACT,
                     dst_base=0, a_exp=2, dst_exp=9)]
"""Two instructions that run before a refused one: they must have run, the refused one not."""


def refused(item, m_u: int = 3, modes=("pseudo",) * 4, words=None):
    """Run FIRST, `item` and more behind it; the run must stop at `item` (pc 2) with error."""
    items = FIRST + [item, Instruction(Opcode.RELU, a_bank=Bank.ACT, a_base=0, m=30,
                                       dst_bank=Bank.ACT, dst_base=64, aux_bank=Bank.ERR),
                     Instruction(Opcode.END)]
    if words is not None:
        words = program_words(FIRST) + words + program_words(items[3:])
    record = run_against_machine(items, 5, m_u, list(modes), words=words)
    assert record["error"] and not record["done"] and not record["busy"]
    assert record["pc"] == 2 and len(record["retired"]) == 2
    assert record["cycles"] == program_cycles(FIRST + [Instruction(Opcode.END)], P)
    return Refusal(record["cause"])


def test_a_word_that_is_no_opcode_stops_the_run():
    word = [15] + [0] * (len(program_words([FIRST[0]])) - 1)
    assert refused(Instruction(Opcode.END), words=word) == Refusal.OPCODE


ACC_WORDS = bank_words(P)[Bank.ACC]


@pytest.mark.parametrize("item, cause, machine_raises", [
    (Instruction(Opcode.BITWIDTH, a_bank=Bank.ACC, a_base=2, m=4), Refusal.PLACE, False),
    (Instruction(Opcode.BITWIDTH, a_bank=Bank.ACC, a_base=ACC_WORDS - 4, m=5), Refusal.PLACE,
     True),
    (Instruction(Opcode.RELU_BACKWARD, a_bank=Bank.ERR, b_bank=Bank.ERR, b_base=1020, m=8,
                 dst_bank=Bank.ACT), Refusal.PLACE, True),
    (Instruction(Opcode.RELU_BACKWARD, a_bank=Bank.ERR, b_bank=Bank.ERR, b_base=8, m=16,
                 dst_bank=Bank.ERR), Refusal.PLACE, False),  # in place over a, over b at 8
    (Instruction(Opcode.ROUND, a_bank=Bank.ACT, m=16, keep=7, dst_bank=Bank.ACT, dst_base=8),
     Refusal.PLACE, False),
    (Instruction(Opcode.RELU, a_bank=Bank.ACT, m=16, dst_bank=Bank.ERR, aux_bank=Bank.ACT,
                 aux_base=8), Refusal.PLACE, False),
    (Instruction(Opcode.RELU, a_bank=Bank.ACC, m=4, dst_bank=Bank.ACT, aux_bank=Bank.ERR),
     Refusal.BANKS, False),
    (Instruction(Opcode.RELU, a_bank=Bank.ACT, m=4, dst_bank=Bank.ERR, dst_base=8,
                 aux_bank=Bank.ERR, aux_base=16), Refusal.BANKS, False),
    (Instruction(Opcode.RELU_BACKWARD, a_bank=Bank.ACC, b_bank=Bank.ERR, m=4,
                 dst_bank=Bank.ERR), Refusal.BANKS, False),
    (Instruction(Opcode.UPDATE, a_bank=Bank.ERR, m=4, dst_bank=Bank.ACC, n=8), Refusal.BANKS,
     False),
    (Instruction(Opcode.UPDATE, a_bank=Bank.ACC, m=4, dst_bank=Bank.WEIGHT, n=8),
     Refusal.BANKS, False),
    (Instruction(Opcode.UPDATE, a_bank=Bank.ERR, m=4, dst_bank=Bank.WEIGHT, n=16),
     Refusal.SETTING, False),
])
def test_instructions_the_core_cannot_run_as_the_machine_stop_the_run(item, cause,
                                                                       machine_raises):
    """Each names its cause; where the machine raises too, the program was wrong, elsewhere the
    core has a limit the compiler's programs stay within."""
    assert refused(item) == cause
    machine = Machine(P, RoundingPolicy(), 3)
    if machine_raises:
        with pytest.raises(ValueError):
            machine.execute(item)


@pytest.mark.parametrize("m_u, modes", [(0, ("pseudo",) * 4), (9, ("pseudo",) * 4)])
def test_a_gradient_round_needs_m_u_in_1_to_8(m_u, modes):
    item = Instruction(Opcode.ROUND, a_bank=Bank.ACC, a_base=64, m=8, keep=KEEP_M_U, kind=2,
                       dst_bank=Bank.ERR)
    assert refused(item, m_u, modes) == Refusal.SETTING
    with pytest.raises(ValueError, match="m_u"):
        Machine(P, RoundingPolicy(), m_u).execute(item)


def test_a_round_whose_mode_code_is_no_mode_stops_the_run():
    item = Instruction(Opcode.ROUND, a_bank=Bank.ACC, a_base=64, m=8, keep=7, kind=1,
                       dst_bank=Bank.ERR)
    assert refused(item, 3, ("pseudo", len(ROUND_MODES), "pseudo", "pseudo")) == Refusal.SETTING


def test_a_program_without_end_stops_at_the_end_of_the_instruction_memory():
    capacity = PROGRAM_WORDS // len(program_words([FIRST[0]]))
    items = [Instruction(Opcode.BITWIDTH, a_bank=Bank.ACC, a_base=0, m=4)] * capacity
    record = run_against_machine(items, 9, 3, ["pseudo"] * 4)
    assert record["error"] and Refusal(record["cause"]) == Refusal.PROGRAM
    assert record["pc"] == capacity


def test_a_new_start_clears_the_error_and_runs_again():
    """After a refused run, the next start runs from word 0 again (here: the same program, whose
    first instructions run again; the refusal again at pc 2)."""
    unit = bench()
    items = FIRST + [Instruction(Opcode.GEMM), Instruction(Opcode.END)]
    outcomes = []

    async def job(ctx):
        core = unit.core
        await unit.load(ctx, {}, np.zeros(EXPONENT_REGISTERS, int), program_words(items))
        for _ in range(2):
            record = await unit.run(ctx, items, None, 3, ["pseudo"] * 4)
            outcomes.append((record["pc"], ctx.get(core.error), ctx.get(core.done)))
            await ctx.tick()

    unit.execute(job)
    assert outcomes == [(2, 1, 0), (2, 1, 0)]
