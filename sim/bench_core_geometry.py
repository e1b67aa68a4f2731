"""Core bench of the geometry engines: programs of POOL, POOL_BACKWARD and COL2IM (under pool and
convolution geometries with ties, overlapping windows, stride 2 and padding) run on the Core's
Verilog, loaded and read back through its host ports, bit-exact against the reference machine
(`niti_hw.program.machine.Machine`, golden arithmetic) and in `program_cycles`.

After `done`, a drain window: `done` must hold and `busy`, `error` and `pc` stay as they are
(nothing runs on). Then the ACT, ERR and ACC banks are read back whole, every word compared (the
results and every word the program must have left alone) with the machine's, and each result's
exponent register; only those compared values are counted (`values`; `vectors`: the words the
instructions wrote, among them).
"""

from __future__ import annotations

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, ReadOnly, RisingEdge
from harness import (BENCH_TIMEOUT, DRAIN, PATIENCE, PERIOD_NS, Scoreboard, bench_int,
                     bench_params, record)

from niti_hw.golden import RoundingPolicy
from niti_hw.perf.timing import BANK_READ_LATENCY, program_cycles
from niti_hw.program.isa import Bank, Geometry, Instruction, Opcode, encode
from niti_hw.program.machine import Machine
from niti_hw.program.memory import bank_words

M_U = 3
POOLS = [  # batch, height, width, channels, kernel, stride
    (2, 4, 4, 3, 2, 2), (1, 5, 6, 2, 3, 2), (1, 5, 5, 3, 3, 1), (2, 7, 5, 1, 2, 3),
]
CONVS = [  # batch, height, width, channels, kernel_h, kernel_w, stride, padding
    (1, 4, 4, 1, 3, 3, 1, 1), (1, 5, 4, 2, 3, 3, 2, 1), (2, 3, 3, 1, 2, 2, 1, 0),
    (1, 5, 5, 1, 3, 2, 2, 2),
]
COMPARED = (Bank.ACT, Bank.ERR, Bank.ACC)


def geometry(opcode, n, h, w, c, kh, kw, s, p) -> Geometry:
    return Geometry(opcode, n, h, w, c, kh, kw, s, p, (h + 2 * p - kh) // s + 1,
                    (w + 2 * p - kw) // s + 1)


def program(rng) -> list:
    """A pool, its backward from the pooled values' place and winners, a COL2IM."""
    n, h, w, c, k, s = POOLS[rng.integers(len(POOLS))]
    gp = geometry(Opcode.POOL_GEOMETRY, n, h, w, c, k, k, s, 0)
    gc = geometry(Opcode.CONV_GEOMETRY, *CONVS[rng.integers(len(CONVS))])
    words = n * h * w * c
    columns = gc.windows * gc.depth
    return [
        gp,
        Instruction(Opcode.POOL, a_bank=Bank.ACT, a_base=0, m=words, dst_bank=Bank.ACT,
                    dst_base=512, aux_bank=Bank.ERR, aux_base=512, a_exp=1, dst_exp=2),
        Instruction(Opcode.POOL_BACKWARD, a_bank=Bank.ACT, a_base=512, b_bank=Bank.ERR,
                    b_base=512, dst_bank=Bank.ERR, dst_base=0, m=words, a_exp=2, dst_exp=3),
        gc,
        Instruction(Opcode.COL2IM, a_bank=Bank.ACC, a_base=0, m=gc.windows, n=gc.depth,
                    dst_bank=Bank.ACC, dst_base=-(-columns // 4) * 4, a_exp=4, dst_exp=5),
        Instruction(Opcode.END),
    ]


def contents(p, rng) -> dict:
    """int8 banks in -3..3 (ties in most windows), the int32 bank anywhere in int32."""
    words = bank_words(p)
    banks = {bank: rng.integers(-3, 4, words[bank]) for bank in (Bank.ACT, Bank.ERR, Bank.WEIGHT)}
    banks[Bank.ACC] = rng.integers(-2**31, 2**31, words[Bank.ACC])
    return banks


def result_words(items) -> int:
    """Words the program's instructions write (values, winners, routed errors, col2im sums)."""
    held, words = {}, 0
    for item in items:
        if isinstance(item, Geometry):
            held[item.opcode] = item
        elif item.opcode != Opcode.END:
            g = held[Opcode.CONV_GEOMETRY if item.opcode == Opcode.COL2IM else Opcode.POOL_GEOMETRY]
            words += 2 * g.windows * g.channels if item.opcode == Opcode.POOL else \
                g.batch * g.height * g.width * g.channels
    return words


def pack(values) -> int:
    return sum((int(v) & 0xFFFFFFFF) << (32 * n) for n, v in enumerate(values))


def unpack(word: int, lanes: int) -> list[int]:
    values = [(word >> (32 * n)) & 0xFFFFFFFF for n in range(lanes)]
    return [v - (1 << 32) if v >> 31 else v for v in values]


async def load(dut, p, banks: dict, exponents, words) -> None:
    """Bank rows, exponent registers and program words through the host ports, one a cycle."""
    lanes = p.lanes
    dut.host_wr__mask.value = (1 << lanes) - 1
    for bank, values in banks.items():
        for row in range(len(values) // lanes):
            dut.host_wr__en.value = 1
            dut.host_wr__bank.value = int(bank)
            dut.host_wr__row.value = row
            dut.host_wr__data.value = pack(values[row * lanes:(row + 1) * lanes])
            await FallingEdge(dut.clk)
    dut.host_wr__en.value = 0
    for index, value in enumerate(exponents):
        dut.exp_wr__en.value = 1
        dut.exp_wr__index.value = index
        dut.exp_wr__value.value = int(value) & 0xFFFF
        await FallingEdge(dut.clk)
    dut.exp_wr__en.value = 0
    for addr, word in enumerate(words):
        dut.imem__en.value = 1
        dut.imem__addr.value = addr
        dut.imem__data.value = word
        await FallingEdge(dut.clk)
    dut.imem__en.value = 0
    await FallingEdge(dut.clk)


async def read_bank(dut, p, bank: Bank) -> np.ndarray:
    """A whole bank through `host_rd`, a row asked for every cycle, each on `data` after the
    second rising edge (BANK_READ_LATENCY)."""
    rows, got = bank_words(p)[bank] // p.lanes, []
    for j in range(rows + BANK_READ_LATENCY - 1):
        dut.host_rd__en.value = int(j < rows)
        dut.host_rd__bank.value = int(bank)
        dut.host_rd__row.value = min(j, rows - 1)
        await FallingEdge(dut.clk)  # past rising edge j
        if j >= BANK_READ_LATENCY - 1:  # the row asked for before rising edge j - 1
            got += unpack(int(dut.host_rd__data.value), p.lanes)
    return np.array(got)


async def run(dut) -> int:
    """Start the program; cycles from the start cycle to the cycle `done` rises."""
    dut.start.value = 1
    await RisingEdge(dut.clk)
    dut.start.value = 0
    cycles = 1
    while True:
        await ReadOnly()
        if int(dut.done.value) or int(dut.error.value):
            return cycles
        await RisingEdge(dut.clk)
        cycles += 1
        assert cycles < 50 * PATIENCE, "no done or error"


@cocotb.test(**BENCH_TIMEOUT)
async def geometry_programs(dut):
    p = bench_params()
    cocotb.start_soon(Clock(dut.clk, PERIOD_NS, unit="ns").start())
    for name in ("start", "host_wr__en", "host_rd__en", "exp_wr__en", "imem__en"):
        getattr(dut, name).value = 0
    dut.config.value = M_U  # m_u in the low bits, every rounding mode code 0 (unused here)
    dut.rst.value = 1
    for _ in range(2):
        await RisingEdge(dut.clk)
    dut.rst.value = 0
    await FallingEdge(dut.clk)
    rng = np.random.default_rng(bench_int("NITI_HW_SEED", 1))
    board, runs, timed = Scoreboard("core geometry engines", dut._log), 0, 0
    while board.values < bench_int("NITI_HW_VECTORS", 4000):
        items, banks = program(rng), contents(p, rng)
        exponents = rng.integers(-40, 41, 8)
        machine = Machine(p, RoundingPolicy(), M_U)
        for bank, values in banks.items():
            machine.banks[bank][:] = values
        machine.exponents[:8] = exponents
        machine.run(items)
        await load(dut, p, banks, exponents, [word for item in items for word in encode(item)])
        cycles = await run(dut)
        assert int(dut.done.value) and not int(dut.error.value), f"run {runs}: error"
        assert cycles == program_cycles(items, p), \
            f"run {runs}: {cycles} cycles, model {program_cycles(items, p)}"
        timed += 1
        pc = int(dut.pc.value)
        for _ in range(DRAIN):  # nothing runs on after done
            await FallingEdge(dut.clk)
            assert (int(dut.done.value), int(dut.busy.value), int(dut.error.value),
                    int(dut.pc.value)) == (1, 0, 0, pc), f"run {runs}: activity after done"
        board.vectors += result_words(items)
        for bank in COMPARED:
            got = await read_bank(dut, p, bank)
            for word in np.flatnonzero(got != machine.banks[bank])[:1]:
                raise AssertionError(f"run {runs}: {bank.name} word {word}: RTL {got[word]}, "
                                     f"machine {machine.banks[bank][word]}")
            board.values += got.size
        for item in items:
            if isinstance(item, Instruction) and item.opcode != Opcode.END:
                dut.exp_rd__index.value = item.dst_exp
                await FallingEdge(dut.clk)
                value = int(dut.exp_rd__value.value)
                board.compare(f"run {runs}: exp[{item.dst_exp}]", value - (value >> 15 << 16),
                              int(machine.exponents[item.dst_exp]))
        runs += 1
    record({**board.report(), "runs": runs, "timed": timed})
