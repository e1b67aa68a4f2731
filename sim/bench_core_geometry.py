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
from bench_core_step import Host
from cocotb.triggers import FallingEdge, ReadOnly, RisingEdge
from harness import BENCH_TIMEOUT, DRAIN, PATIENCE, Scoreboard, bench_int, bench_params, record

from niti_hw.golden import RoundingPolicy
from niti_hw.perf.timing import program_cycles
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
    """int8 banks mostly in -3..3 (ties in most windows), one word in five anywhere in
    -127..127 (routed sums of overlapping windows that saturate), the int32 bank anywhere in
    int32."""
    words = bank_words(p)
    banks = {}
    for bank in (Bank.ACT, Bank.ERR, Bank.WEIGHT):
        values = rng.integers(-3, 4, words[bank])
        wide = rng.random(words[bank]) < 0.2
        values[wide] = rng.integers(-127, 128, int(wide.sum()))
        banks[bank] = values
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


async def load(host: Host, p, banks: dict, exponents, words) -> None:
    """Whole banks, exponent registers and program words through the host ports, one a cycle."""
    lanes = p.lanes
    for bank, values in banks.items():
        await host.write_rows(bank, {row: values[row * lanes:(row + 1) * lanes]
                                     for row in range(len(values) // lanes)})
    await host.write_exponents(exponents)
    await host.write_program(words)
    for _ in range(2):  # the banks' write register
        await RisingEdge(host.clk)


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
    host = Host(dut, p)
    await host.reset()
    dut.config.value = M_U  # m_u in the low bits, every rounding mode code 0 (unused here)
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
        await load(host, p, banks, exponents, [word for item in items for word in encode(item)])
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
            got = await host.read_bank(bank)
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
