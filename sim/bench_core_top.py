"""CoreTop bench through cocotbext-axi: AxiLiteMaster on the registers (s_axil), AxiStreamSource
(s_axis) and AxiStreamSink (m_axis) on the frames, as a host drives the core on a board.

host_flow: rounds of one program of every opcode the core runs, on random banks, exponents,
m_u and rounding modes: the program and the banks go in by WRITE frames (random TVALID gaps),
exponents and CONFIG by register writes, CTRL.start runs it, STATUS is polled, READ frames
bring every bank back (random TREADY backpressure); banks and exponents must equal
`niti_hw.program.machine.Machine`'s, CYCLES `perf.timing.program_cycles`; no beat follows.
refusals: a frame while the core runs is BUSY and writes nothing; a start while it runs sets
STATUS.refused.
"""

from __future__ import annotations

import logging
import random

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ReadOnly, RisingEdge, SimTimeoutError, with_timeout
from cocotbext.axi import (AxiLiteBus, AxiLiteMaster, AxiResp, AxiStreamBus, AxiStreamFrame,
                           AxiStreamSink, AxiStreamSource)
from harness import BENCH_TIMEOUT, PERIOD_NS, Scoreboard, bench_int, bench_params, record

from niti_hw.golden import RoundingPolicy
from niti_hw.golden.tensor import TENSOR_KINDS
from niti_hw.params import ROUND_MODES
from niti_hw.perf.timing import STREAM_CHECK_CYCLES, program_cycles
from niti_hw.program.isa import (EXPONENT_REGISTERS, KEEP_M_U, Bank, Geometry, Instruction,
                                 Opcode, encode)
from niti_hw.program.machine import Machine
from niti_hw.program.memory import bank_words
from niti_hw.registers import WORD_BYTES, core_register_map
from niti_hw.rtl.core import PROGRAM_WORDS
from niti_hw.stream_frames import (PROGRAM, Error, bank_depths, from_bytes,
                                   program_beats, read_frame, tensor_beats, to_bytes, write_frame)

PATIENCE = 20_000  # cycles a frame, an answer or a run may take before the bench fails
DRAIN = 100  # cycles watched for an extra beat after the expected ones
SETTLE = STREAM_CHECK_CYCLES + 1  # cycles after a frame's last beat until its error is set
UNIT = "core top"

EVERY_OPCODE = [
    Geometry(Opcode.CONV_GEOMETRY, 8, 16, 16, 1, 3, 3, 1, 0, 14, 14),
    Instruction(Opcode.BITWIDTH, a_bank=Bank.ACC, a_base=48, m=13),
    Instruction(Opcode.ROUND, a_bank=Bank.ACC, a_base=48, m=13, keep=5, kind=0,
                dst_bank=Bank.ACT, dst_base=8, a_exp=1, dst_exp=2),
    Geometry(Opcode.POOL_GEOMETRY, 8, 14, 14, 8, 2, 2, 2, 0, 7, 7),
    Instruction(Opcode.ROUND, a_bank=Bank.ACC, a_base=96, m=30, keep=KEEP_M_U, kind=2,
                dst_bank=Bank.ERR, dst_base=8),
    Instruction(Opcode.RELU, a_bank=Bank.ACT, a_base=8, m=13, dst_bank=Bank.ACT, dst_base=104,
                aux_bank=Bank.ERR, aux_base=200, a_exp=2, dst_exp=3),
    Instruction(Opcode.RELU_BACKWARD, a_bank=Bank.ERR, a_base=8, b_bank=Bank.ERR, b_base=600,
                m=29, dst_bank=Bank.ERR, dst_base=304, a_exp=7, dst_exp=5),
    Instruction(Opcode.UPDATE, a_bank=Bank.ERR, a_base=304, m=29, dst_bank=Bank.WEIGHT,
                dst_base=40, n=8),
    Instruction(Opcode.RELU, a_bank=Bank.WEIGHT, a_base=40, m=16, dst_bank=Bank.WEIGHT,
                dst_base=40, aux_bank=Bank.ACC, aux_base=200, a_exp=3, dst_exp=3),
    Instruction(Opcode.BITWIDTH, a_bank=Bank.ERR, a_base=800, m=12),
    Instruction(Opcode.ROUND, a_bank=Bank.ERR, a_base=800, m=12, keep=4, kind=1,
                dst_bank=Bank.ACT, dst_base=504, a_exp=9, dst_exp=9),
    Instruction(Opcode.UPDATE, a_bank=Bank.ACT, a_base=504, m=8, dst_bank=Bank.WEIGHT,
                dst_base=120, n=8),
    Instruction(Opcode.END)]
"""Every opcode the core runs, chained as a compiled step chains them, tensors at rows of up to
8 lanes (banks of 1 KiB, a tensor buffer of 256 words at least)."""
LONG = [Instruction(Opcode.RELU, a_bank=Bank.ACT, a_base=0, m=1024, dst_bank=Bank.ERR,
                    dst_base=0, aux_bank=Bank.WEIGHT, aux_base=0)] * 3 + [Instruction(Opcode.END)]


def random_banks(rng: np.random.Generator, params) -> dict[Bank, np.ndarray]:
    """int8 banks in [-127, 127] with zero stretches; the int32 bank in stretches of random bit
    lengths (B from 0 to 32)."""
    words = bank_words(params)
    banks = {}
    for bank in (Bank.ACT, Bank.ERR, Bank.WEIGHT):
        values = rng.integers(-127, 128, words[bank])
        values[rng.random(words[bank]) < 0.3] = 0
        banks[bank] = values
    acc = np.zeros(words[Bank.ACC], np.int64)
    start = 0
    while start < acc.size:
        length = min(int(rng.integers(1, 48)), acc.size - start)
        bits = int(rng.choice([0, 1, 3, 7, 8, 9, 12, 20, 31, 32]))
        low, high = (-(1 << bits - 1), 1 << bits - 1) if bits else (0, 1)
        acc[start:start + length] = rng.integers(max(low, -2**31), min(high, 2**31), length)
        start += length
    banks[Bank.ACC] = acc
    return banks


async def bounded(what: str, wait, cycles: int = PATIENCE):
    try:
        return await with_timeout(wait, cycles * PERIOD_NS, "ns")
    except SimTimeoutError:
        raise AssertionError(f"{UNIT}: {what}: nothing in {cycles} cycles") from None


def pauses(rng: random.Random, chance: float):
    while True:
        yield rng.random() < chance


class Host:
    """The bus masters of one bench and the register map's offsets and fields."""

    def __init__(self, dut, params):
        self.dut, self.params = dut, params
        self.regmap = core_register_map(params, PROGRAM_WORDS)
        self.axil = AxiLiteMaster(AxiLiteBus.from_prefix(dut, "s_axil"), dut.clk, dut.rst)
        self.source = AxiStreamSource(AxiStreamBus.from_prefix(dut, "s_axis"), dut.clk, dut.rst)
        self.sink = AxiStreamSink(AxiStreamBus.from_prefix(dut, "m_axis"), dut.clk, dut.rst)
        for prefix in ("s_axis", "m_axis", "s_axil"):  # one log line per frame otherwise
            logging.getLogger(f"cocotb.{dut._name}.{prefix}").setLevel(logging.WARNING)

    async def reset(self) -> None:
        self.dut.rst.value = 1
        for _ in range(2):
            await RisingEdge(self.dut.clk)
        self.dut.rst.value = 0
        await RisingEdge(self.dut.clk)

    def field(self, reg: str, name: str, word: int) -> int:
        f = self.regmap[reg].field(name)
        return (word & f.mask) >> f.lsb

    async def write(self, reg: str, value: int) -> None:
        data = value.to_bytes(WORD_BYTES, "little")
        resp = (await bounded(f"write to {reg}", self.axil.write(self.regmap[reg].offset,
                                                                  data))).resp
        assert resp == AxiResp.OKAY, f"{UNIT}: write to {reg}: {resp}"

    async def read(self, reg: str) -> int:
        resp = await bounded(f"read of {reg}", self.axil.read(self.regmap[reg].offset,
                                                               WORD_BYTES))
        assert resp.resp == AxiResp.OKAY, f"{UNIT}: read of {reg}: {resp.resp}"
        return int.from_bytes(resp.data, "little")

    async def frame(self, words) -> None:
        await self.source.send(AxiStreamFrame(to_bytes(self.params, words)))
        await bounded("a frame sent", self.source.wait())

    async def answer(self, what: str) -> list[int]:
        frame = await bounded(what, self.sink.recv(compact=False))
        assert all(frame.tkeep), f"{UNIT}: {what}: TKEEP not all ones"
        return from_bytes(self.params, bytes(frame.tdata))

    async def load(self, items, contents, exponents) -> None:
        p = self.params
        words = [word for item in items for word in encode(item)]
        await self.frame(write_frame(p, PROGRAM, 0, program_beats(p, words), PROGRAM_WORDS))
        for bank, values in contents.items():
            await self.frame(write_frame(p, bank, 0, tensor_beats(p, bank, values)))
        for index, value in enumerate(exponents):
            await self.write("EXP_INDEX", index)
            await self.write("EXP_VALUE", int(value) & 0xFFFF)

    async def configure(self, m_u: int, modes) -> None:
        reg = self.regmap["CONFIG"]
        word = m_u << reg.field("m_u").lsb
        for kind, mode in zip(TENSOR_KINDS, modes):
            word |= ROUND_MODES.index(mode) << reg.field(f"mode_{kind}").lsb
        await self.write("CONFIG", word)

    async def start(self) -> None:
        await self.write("CTRL", self.regmap["CTRL"].field("start").mask)

    async def finish(self) -> int:
        """STATUS polled until busy falls."""
        for _ in range(PATIENCE // 4):
            status = await self.read("STATUS")
            if not self.field("STATUS", "busy", status):
                return status
        raise AssertionError(f"{UNIT}: STATUS.busy still set after {PATIENCE} cycles")

    async def exponents(self) -> list[int]:
        values = []
        for index in range(EXPONENT_REGISTERS):
            await self.write("EXP_INDEX", index)
            value = self.field("EXP_VALUE", "value", await self.read("EXP_VALUE"))
            values.append(value - (1 << 16) if value >> 15 else value)
        return values

    async def banks(self) -> dict[Bank, list[int]]:
        out = {}
        for bank, depth in bank_depths(self.params).items():
            await self.frame(read_frame(self.params, bank, 0, depth))
            out[bank] = await self.answer(f"READ of the {bank.name} bank")
        return out

    async def drain(self) -> None:
        """DRAIN cycles with TREADY high in which no beat may be offered."""
        self.sink.set_pause_generator(None)
        self.sink.pause = False
        for waited in range(DRAIN):
            await RisingEdge(self.dut.clk)
            await ReadOnly()
            if int(self.dut.m_axis_tvalid.value):
                raise AssertionError(f"{UNIT}: extra beat on m_axis {waited + 1} cycles after "
                                     "the expected ones")
        assert self.sink.empty() and not self.sink.active, f"{UNIT}: an extra frame on m_axis"


def machine_for(params, contents, exponents, m_u: int, modes) -> Machine:
    machine = Machine(params, RoundingPolicy(*modes, seed=params.lfsr_seed,
                                             n_lanes=params.lfsr_lanes), m_u)
    for bank, values in contents.items():
        machine.banks[bank][:] = values
    machine.exponents[:] = exponents
    return machine


def compare_banks(board, params, got: dict, machine: Machine, what: str) -> None:
    """Each bank's answer beats against the machine's values, beat by beat."""
    for bank, beats in got.items():
        want = tensor_beats(params, bank, machine.banks[bank])
        board.compare_beats(f"{what}: the {bank.name} bank", beats, want)


async def setup(dut):
    cocotb.start_soon(Clock(dut.clk, PERIOD_NS, unit="ns").start())
    host = Host(dut, bench_params())
    await host.reset()
    return host


@cocotb.test(**BENCH_TIMEOUT)
async def host_flow(dut):
    """Rounds of load, configure, start, poll, read back; against the machine."""
    host = await setup(dut)
    params = host.params
    rng = random.Random(bench_int("NITI_HW_SEED", 1))
    board = Scoreboard(f"{UNIT} host flow, lanes={params.lanes}", dut._log)
    rounds = bench_int("NITI_HW_VECTORS", 3)
    for n in range(rounds):
        await host.reset()  # the LFSRs start from their seed, as the machine's
        host.source.set_pause_generator(pauses(rng, rng.choice([0.0, 0.3])))
        host.sink.set_pause_generator(pauses(rng, rng.choice([0.0, 0.5])))
        contents = random_banks(np.random.default_rng(rng.getrandbits(32)), params)
        exponents = [rng.randint(-40, 40) for _ in range(EXPONENT_REGISTERS)]
        m_u, modes = rng.randint(1, 8), [rng.choice(ROUND_MODES) for _ in TENSOR_KINDS]
        machine = machine_for(params, contents, exponents, m_u, modes)
        machine.run(EVERY_OPCODE)
        await host.load(EVERY_OPCODE, contents, exponents)
        await host.configure(m_u, modes)
        await host.start()
        status = await host.finish()
        board.compare(f"round {n}: STATUS done, no error",
                      (host.field("STATUS", "done", status), host.field("STATUS", "error", status)),
                      (1, 0))
        board.compare(f"round {n}: CYCLES", await host.read("CYCLES"),
                      program_cycles(EVERY_OPCODE, params))
        board.compare(f"round {n}: STREAM.error", await host.read("STREAM"), Error.NONE)
        for index, value in enumerate(await host.exponents()):
            board.compare(f"round {n}: exponent {index}", value, int(machine.exponents[index]))
        compare_banks(board, params, await host.banks(), machine, f"round {n}")
    await host.drain()
    record({"test": "host_flow", **board.report(), "rounds": rounds})


@cocotb.test(**BENCH_TIMEOUT)
async def refusals(dut):
    """A frame while the core runs is BUSY and writes nothing; a start while busy is refused."""
    host = await setup(dut)
    params = host.params
    board = Scoreboard(f"{UNIT} refusals, lanes={params.lanes}", dut._log)
    contents = random_banks(np.random.default_rng(5), params)
    machine = machine_for(params, contents, [0] * EXPONENT_REGISTERS, 1, ["nearest"] * 4)
    machine.run(LONG)
    await host.load(LONG, contents, [])
    await host.start()
    board.compare("busy after start", host.field("STATUS", "busy", await host.read("STATUS")), 1)
    await host.frame(write_frame(params, Bank.ERR, 0, [0x55] * 8))
    await host.start()
    board.compare("a start while busy is refused",
                  host.field("STATUS", "refused", await host.read("STATUS")), 1)
    board.compare("a frame while busy is BUSY", await host.read("STREAM"), Error.BUSY)
    status = await host.finish()
    board.compare("the run ends done", host.field("STATUS", "done", status), 1)
    board.compare("CYCLES", await host.read("CYCLES"), program_cycles(LONG, params))
    await host.write("STATUS", host.regmap["STATUS"].field("refused").mask)
    await host.write("CTRL", host.regmap["CTRL"].field("stream_clear").mask)
    board.compare("STATUS.refused cleared",
                  host.field("STATUS", "refused", await host.read("STATUS")), 0)
    board.compare("STREAM.error cleared", await host.read("STREAM"), Error.NONE)
    compare_banks(board, params, await host.banks(), machine, "after the refused frame")
    await host.drain()
    for _ in range(SETTLE):
        await RisingEdge(dut.clk)
    board.compare("no error from the READs", await host.read("STREAM"), Error.NONE)
    record({"test": "refusals", **board.report()})
