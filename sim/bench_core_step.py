"""Core bench: a job (`core_job.py`: a program and its steps) run on the core's Verilog through
its host ports, as a host on a board would: program, exponent registers and each step's changed
bank rows written, `start`, wait for `done`, every bank read back.

Compared after every step: all four banks, every exponent register and every LFSR lane (read
through `lfsr_rd`) against the reference machine's, word for word (the vectors counted are the
words compared); the cycles of every
instruction against `niti_hw.perf.timing.instruction_cycles` and of the run against
`program_cycles`. After `done` the core must stay idle for a drain window. `NITI_HW_TIMEOUT_MS`
(simulated) bounds the whole bench.
"""

from __future__ import annotations

import os
import time

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import First, ReadOnly, RisingEdge, Timer
from core_job import load
from harness import DRAIN, PERIOD_NS, bench_params, cycle, record

from niti_hw.perf.timing import BANK_READ_LATENCY, each_instruction_cycles, program_cycles
from niti_hw.program.isa import EXPONENT_REGISTERS, INSTRUCTION_WORDS, Bank, Opcode, decode
from niti_hw.rtl.banks import BANK_VALUE_BITS, bank_rows
from niti_hw.rtl.instruction import config_layout

TIMEOUT_MS = int(os.environ.get("NITI_HW_TIMEOUT_MS", 200))


def program_items(words: list[int]) -> list:
    """The instructions up to END, decoded from the words the host loads."""
    items = []
    for start in range(0, len(words), INSTRUCTION_WORDS):
        items.append(decode(words[start:start + INSTRUCTION_WORDS]))
        if items[-1].opcode == Opcode.END:
            return items
    raise AssertionError("the job's program has no END")


def lanes_of(value: int, lanes: int, bits: int = 32) -> list[int]:
    out = [(value >> (n * bits)) & ((1 << bits) - 1) for n in range(lanes)]
    return [v - (1 << bits) if v >> (bits - 1) else v for v in out]


def pack(values, bits: int = 32) -> int:
    return sum((int(v) & ((1 << bits) - 1)) << (n * bits) for n, v in enumerate(values))


class Host:
    """The core's host ports, one access per cycle."""

    def __init__(self, dut, p):
        self.dut, self.p, self.clk = dut, p, dut.clk

    async def reset(self) -> None:
        cocotb.start_soon(Clock(self.clk, PERIOD_NS, unit="ns").start())
        dut = self.dut
        for name in ("start", "imem__en", "exp_wr__en", "host_wr__en", "host_rd__en"):
            getattr(dut, name).value = 0
        dut.rst.value = 1
        for _ in range(2):
            await RisingEdge(self.clk)
        dut.rst.value = 0

    async def write_program(self, words: list[int]) -> None:
        dut = self.dut
        for addr, word in enumerate(words):
            dut.imem__en.value, dut.imem__addr.value, dut.imem__data.value = 1, addr, word
            await RisingEdge(self.clk)
        dut.imem__en.value = 0

    async def write_exponents(self, exponents) -> None:
        dut = self.dut
        for index, value in enumerate(exponents):
            dut.exp_wr__en.value, dut.exp_wr__index.value = 1, index
            dut.exp_wr__value.value = int(value) & 0xFFFF
            await RisingEdge(self.clk)
        dut.exp_wr__en.value = 0

    async def read_exponents(self) -> np.ndarray:
        values = []
        for index in range(EXPONENT_REGISTERS):
            self.dut.exp_rd__index.value = index
            await ReadOnly()
            value = int(self.dut.exp_rd__value.value)
            values.append(value - (1 << 16) if value >> 15 else value)
            await RisingEdge(self.clk)
        return np.array(values)

    async def read_lfsr(self) -> np.ndarray:
        """Every LFSR lane's state through `lfsr_rd`."""
        states = []
        for index in range(self.p.lfsr_lanes):
            self.dut.lfsr_rd__index.value = index
            await ReadOnly()
            states.append(int(self.dut.lfsr_rd__state.value))
            await RisingEdge(self.clk)
        return np.array(states, np.int64)

    async def write_rows(self, bank: Bank, rows: dict[int, np.ndarray]) -> int:
        dut, L = self.dut, self.p.lanes
        for row, values in rows.items():
            dut.host_wr__en.value, dut.host_wr__bank.value, dut.host_wr__row.value = 1, bank, row
            dut.host_wr__mask.value = (1 << L) - 1
            dut.host_wr__data.value = pack(values)
            await RisingEdge(self.clk)
        dut.host_wr__en.value = 0
        return len(rows)

    async def read_bank(self, bank: Bank) -> np.ndarray:
        """Every row of `bank`, requests pipelined one per cycle."""
        dut, L, count = self.dut, self.p.lanes, bank_rows(self.p)[bank]
        got = []
        for n in range(count + BANK_READ_LATENCY):
            if n < count:
                dut.host_rd__en.value, dut.host_rd__bank.value, dut.host_rd__row.value = 1, bank, n
            else:
                dut.host_rd__en.value = 0
            await ReadOnly()
            if n >= BANK_READ_LATENCY:
                got.extend(lanes_of(int(dut.host_rd__data.value), L))
            await RisingEdge(self.clk)
        return np.array(got, np.int64)

    async def run(self, step, patience_cycles: int) -> tuple[list[int], int]:
        """Start with the step's settings; the cycle of every retirement (pc advancing) and of
        `done`, counted as the fast tier counts them (the start cycle is cycle 1)."""
        dut = self.dut
        dut.config.value = config_layout().const({"m_u": step.m_u,
                                                  "modes": list(step.modes)}).as_bits()
        dut.start.value = 1
        await RisingEdge(self.clk)
        dut.start.value = 0
        started, retired, pc = cycle(), [], 0
        deadline = Timer(patience_cycles * PERIOD_NS, unit="ns")
        while True:
            fired = await First(dut.pc.value_change, dut.done.value_change,
                                dut.error.value_change, deadline)
            if fired is deadline:
                raise AssertionError(f"no done after {patience_cycles} cycles; pc {pc}")
            await ReadOnly()
            if int(dut.error.value):
                raise AssertionError(f"the core stopped with error, cause {int(dut.cause.value)}, "
                                     f"at pc {int(dut.pc.value)}")
            now = cycle() - started + 1
            if int(dut.pc.value) != pc:
                assert int(dut.pc.value) == pc + 1, f"pc jumped from {pc} to {int(dut.pc.value)}"
                retired.append(now)
                pc += 1
            if int(dut.done.value):
                await RisingEdge(self.clk)
                return retired, now
            await RisingEdge(self.clk)

    async def stays_idle(self, cycles: int) -> None:
        """No extra activity after done: busy low and pc unchanged for `cycles`."""
        pc = int(self.dut.pc.value)
        for n in range(cycles):
            await ReadOnly()
            assert not int(self.dut.busy.value) and int(self.dut.pc.value) == pc, \
                f"the core was busy again {n} cycles after done"
            await RisingEdge(self.clk)


def changed_rows(current: np.ndarray, wanted: np.ndarray, lanes: int) -> dict[int, np.ndarray]:
    differs = (current != wanted).reshape(-1, lanes).any(axis=1)
    return {int(row): wanted[row * lanes:(row + 1) * lanes] for row in np.flatnonzero(differs)}


def compare(where: str, got: np.ndarray, want: np.ndarray) -> int:
    diff = np.flatnonzero(got != want)
    assert diff.size == 0, (f"{where}: {diff.size} words differ, first at {diff[:8].tolist()}: "
                            f"rtl {got[diff[:8]].tolist()}, machine {want[diff[:8]].tolist()}")
    return got.size


@cocotb.test(timeout_time=TIMEOUT_MS, timeout_unit="ms")
async def steps_run_as_the_machine_runs_them(dut):
    p = bench_params()
    words, steps = load(os.environ["NITI_HW_JOB"])
    items = program_items(words)
    model = each_instruction_cycles(items, p)
    host = Host(dut, p)
    await host.reset()
    await host.write_program(words)
    current = {bank: np.zeros(rows * p.lanes, np.int64) for bank, rows in bank_rows(p).items()}
    compared, simulated, wall, loaded = 0, 0, 0.0, 0
    per_step, by_opcode = [], {}
    for s, step in enumerate(steps):
        for bank in Bank:
            loaded += await host.write_rows(bank, changed_rows(current[bank], step.before[bank],
                                                               p.lanes))
        await host.write_exponents(step.exponents_before)
        for _ in range(2):  # the banks' write register
            await RisingEdge(host.clk)
        began = time.perf_counter()
        retired, total = await host.run(step, 10 * program_cycles(items, p))
        wall += time.perf_counter() - began
        simulated += total
        ends = [1] + retired
        got_cycles = [b - a for a, b in zip(ends, ends[1:])]
        assert got_cycles == model[:len(got_cycles)] and len(got_cycles) == len(items) - 1, (
            f"step {s}: instruction cycles differ from the model at "
            f"{[n for n, (g, w) in enumerate(zip(got_cycles, model)) if g != w][:8]}")
        assert total == program_cycles(items, p), f"step {s}: {total} cycles, model " \
                                                  f"{program_cycles(items, p)}"
        await host.stays_idle(DRAIN)
        for bank in Bank:
            got = await host.read_bank(bank)
            compared += compare(f"step {s}, {bank.name} bank", got, step.after[bank])
            current[bank] = got
        compared += compare(f"step {s}, exponents", await host.read_exponents(),
                            step.exponents_after)
        compared += compare(f"step {s}, LFSR lanes", await host.read_lfsr(),
                            step.lfsr_after.astype(np.int64))
        per_step.append(total)
        for item, spent in zip(items, got_cycles):
            by_opcode[item.opcode.name] = by_opcode.get(item.opcode.name, 0) + spent
    record({"unit": "core", "steps": len(steps), "vectors": compared, "values": compared,
            "instructions": len(items), "cycles_per_step": per_step, "rows_loaded": loaded,
            "cycles_by_opcode": by_opcode,
            "bank_bits": {bank.name: BANK_VALUE_BITS[bank] for bank in Bank},
            "simulated_cycles_per_s": simulated / wall if wall else None})
