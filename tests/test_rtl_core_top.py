"""Fast tier: the core top (`CoreTop`: AXI4-Lite registers, AXI4-Stream frames, the core) in
`amaranth.sim`, driven as a host drives it.

A whole host flow: the program and the banks go in by WRITE frames, the exponents and settings by
register writes, CTRL.start runs it, STATUS is polled, READ frames bring every bank back; the
banks and exponents must equal `niti_hw.program.machine.Machine`'s after the same program, and
CYCLES `perf.timing.program_cycles`. Then what must be refused: frames while the core runs
(BUSY, nothing written), a start while it runs or while a frame is in flight (STATUS.refused),
a READ of the program memory (OP); the register map's reset values and SLVERR.
"""

from __future__ import annotations

import dataclasses
import functools
import random
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from niti_hw.golden.tensor import TENSOR_KINDS
from niti_hw.params import ROUND_MODES, HardwareParams
from niti_hw.perf.timing import CORE_STREAM_READ_LATENCY, STREAM_CHECK_CYCLES, program_cycles
from niti_hw.program.isa import EXPONENT_REGISTERS, Bank, Instruction, Opcode
from niti_hw.registers import WORD_BYTES, core_register_map
from niti_hw.stream_frames import (PROGRAM, Error, beat_values, core_depths, program_beats,
                                   read_frame, tensor_beats, write_frame)

pytest.importorskip("amaranth", reason="needs the rtl extra: pip install 'niti-hw[rtl]'")

from niti_hw.rtl.core_top import CoreTop  # noqa: E402
from niti_hw.rtl.instruction import Refusal  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "sim"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from inprocess import AxiLiteInProcess, AxisInProcess, axis_ready, run_testbench  # noqa: E402
from stream_host import as_beats  # noqa: E402
from test_rtl_core import (EVERY_OPCODE, instruction, machine_for, program_words,  # noqa: E402
                           random_banks)

SMALL = {lanes: HardwareParams(rows=8, cols=8, lanes=lanes, lfsr_lanes=8, ifmap_sram_kib=1,
                               ofmap_sram_kib=1, filter_sram_kib=1, tensor_buffer_words=256)
         for lanes in (4, 8)}
"""32-bit beats (two header beats, a program word a beat) and 64-bit beats (one header beat,
two program words a beat)."""
PROGRAM_WORDS = 256
PATIENCE = 20_000  # cycles a run may take
QUIET = 50  # idle cycles on m_axis that end a simulation
SETTLE = STREAM_CHECK_CYCLES + 1  # cycles after a frame's last beat until its error is set
WATCH = ("m_axis_tvalid", "m_axis_tready", "m_axis_tdata", "m_axis_tkeep", "m_axis_tlast")


@functools.cache
def regmap(p: HardwareParams):
    return core_register_map(p, PROGRAM_WORDS)


def offset(p, name: str) -> int:
    return regmap(p)[name].offset


def field(p, reg: str, name: str, word: int) -> int:
    f = regmap(p)[reg].field(name)
    return (word & f.mask) >> f.lsb


class Host:
    """A host's view of one CoreTop in a simulation: registers on the AXI4-Lite master, frames on
    the stream master; READ answers are read from the trace of m_axis after the run."""

    def __init__(self, ctx, top: CoreTop, rng: random.Random, gap: float):
        self.ctx, self.top, self.p = ctx, top, top.params
        self.axil = AxiLiteInProcess(ctx, top, "core top", patience=200)
        self.axis = AxisInProcess(ctx, top, "core top", rng, gap, patience=PATIENCE)

    async def write(self, name: str, value: int) -> None:
        assert await self.axil.write(offset(self.p, name), value) == 0, name

    async def read(self, name: str) -> int:
        data, resp = await self.axil.read(offset(self.p, name))
        assert resp == 0, name
        return data

    async def frame(self, words, last: bool = True) -> None:
        await self.axis.send(as_beats(self.p, words, last))

    async def load(self, contents: dict, exponents, words) -> None:
        p = self.p
        await self.frame(write_frame(p, PROGRAM, 0, program_beats(p, words), PROGRAM_WORDS))
        for bank, values in contents.items():
            await self.frame(write_frame(p, bank, 0, tensor_beats(p, bank, values)))
        for index, value in enumerate(exponents):
            await self.write("EXP_INDEX", index)
            await self.write("EXP_VALUE", int(value) & 0xFFFF)

    async def exponents(self) -> list[int]:
        values = []
        for index in range(EXPONENT_REGISTERS):
            await self.write("EXP_INDEX", index)
            value = field(self.p, "EXP_VALUE", "value", await self.read("EXP_VALUE"))
            values.append(value - (1 << 16) if value >> 15 else value)
        return values

    async def configure(self, m_u: int, modes) -> None:
        reg = regmap(self.p)["CONFIG"]
        word = reg.field("m_u").mask & (m_u << reg.field("m_u").lsb)
        for kind, mode in zip(TENSOR_KINDS, modes):
            word |= ROUND_MODES.index(mode) << reg.field(f"mode_{kind}").lsb
        await self.write("CONFIG", word)

    async def run(self) -> int:
        """CTRL.start, then STATUS polled until busy falls; returns STATUS."""
        await self.write("CTRL", regmap(self.p)["CTRL"].field("start").mask)
        for _ in range(PATIENCE // 4):
            status = await self.read("STATUS")
            if not field(self.p, "STATUS", "busy", status):
                return status
        raise AssertionError(f"STATUS.busy still set after {PATIENCE} cycles")

    async def read_banks(self) -> None:
        """A READ frame per bank, whole (the answers are in the trace)."""
        for bank, depth in core_depths(self.p, PROGRAM_WORDS).items():
            if bank != PROGRAM:
                await self.frame(read_frame(self.p, bank, 0, depth))


def answers(p, trace) -> list[list[int]]:
    """m_axis beats, one list per TLAST, TKEEP all ones on each."""
    frames, current = [], []
    for cycle in trace:
        beat = dict(zip(WATCH, cycle))
        if beat["m_axis_tvalid"] and beat["m_axis_tready"]:
            assert beat["m_axis_tkeep"] == (1 << p.lanes) - 1
            current.append(beat["m_axis_tdata"])
            if beat["m_axis_tlast"]:
                frames.append(current)
                current = []
    assert not current, f"answer beats without TLAST: {current}"
    return frames


def simulate(p, bench, seed: int = 0, stall: float = 0.0) -> list[list[int]]:
    """Run `bench(host)` on a fresh CoreTop; returns the READ answers."""
    top = CoreTop(p, PROGRAM_WORDS)
    rng = random.Random(seed)

    async def testbench(ctx):
        await bench(Host(ctx, top, rng, gap=0.2 if seed % 2 else 0.0))
        quiet = 0  # the last READ's answer, then QUIET cycles of room for an extra beat
        for _ in range(PATIENCE):
            _, _, valid = await ctx.tick().sample(top.m_axis_tvalid)
            quiet = 0 if valid else quiet + 1
            if quiet == QUIET:
                return
        raise AssertionError(f"m_axis still valid {PATIENCE} cycles after the last frame")

    trace = run_testbench(top, testbench, watch=[getattr(top, name) for name in WATCH],
                          beside=[axis_ready(top, rng, stall)])
    return answers(p, trace)


def banks_of(p, frames) -> dict[Bank, list[int]]:
    return {bank: beat_values(p, bank, beats) for bank, beats in zip(Bank, frames)}


def host_flow(p, items, seed: int, m_u: int, modes, stall: float = 0.0) -> dict:
    """Load, run, read back; the machine runs the same program. Returns what was seen."""
    rng = np.random.default_rng(seed)
    contents = random_banks(rng, p)
    exponents = rng.integers(-40, 41, EXPONENT_REGISTERS)
    machine = machine_for(p, contents, exponents, m_u, modes)
    machine.run(items)
    seen = {}

    async def bench(host):
        await host.load(contents, exponents, program_words(items))
        await host.configure(m_u, modes)
        seen["status"] = await host.run()
        seen["cause"], seen["pc"] = await host.read("CAUSE"), await host.read("PC")
        seen["cycles"] = await host.read("CYCLES")
        seen["exponents"] = await host.exponents()
        seen["stream"] = await host.read("STREAM")
        await host.read_banks()

    frames = simulate(p, bench, seed, stall)
    assert field(p, "STATUS", "done", seen["status"]) and \
        not field(p, "STATUS", "error", seen["status"]), \
        f"the run stopped at pc {seen['pc']}: {Refusal(seen['cause']).name}"
    assert len(frames) == len(Bank), f"{len(frames)} READ answers for {len(Bank)} READs"
    seen["banks"] = banks_of(p, frames)
    for bank in Bank:
        got, want = np.array(seen["banks"][bank]), machine.banks[bank]
        diff = np.flatnonzero(got != want)
        assert diff.size == 0, (f"{bank.name} differs at words {diff[:8].tolist()}: top "
                                f"{got[diff[:8]].tolist()}, machine {want[diff[:8]].tolist()}")
    assert seen["exponents"] == machine.exponents.tolist()
    assert seen["stream"] == Error.NONE
    return seen


def aligned(items, lanes: int) -> list:
    """`items` with every tensor base rounded up to a row of `lanes` (EVERY_OPCODE's tensors
    stay apart at 8 lanes)."""
    bases = ("a_base", "b_base", "dst_base", "aux_base")
    return [dataclasses.replace(item, **{name: -(-getattr(item, name) // lanes) * lanes
                                         for name in bases})
            if isinstance(item, Instruction) else item for item in items]


@pytest.mark.parametrize("lanes", sorted(SMALL))
def test_host_flow_of_every_opcode_equals_the_machine(lanes):
    """Program, banks, exponents in; start; poll; banks and exponents out, bit-identical; CYCLES
    the formula's."""
    p, items = SMALL[lanes], aligned(EVERY_OPCODE, lanes)
    seen = host_flow(p, items, 11, 2, ["pseudo", "nearest", "stochastic", "pseudo"], stall=0.3)
    assert seen["cycles"] == program_cycles(items, p)


P4 = SMALL[4]


@settings(max_examples=3, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(instruction(P4), min_size=1, max_size=5), st.integers(0, 2**32 - 1),
       st.integers(1, 8), st.lists(st.sampled_from(ROUND_MODES), min_size=len(TENSOR_KINDS),
                                   max_size=len(TENSOR_KINDS)))
def test_random_programs_through_the_host_flow_equal_the_machine(items, seed, m_u, modes):
    items = items + [Instruction(Opcode.END)]
    seen = host_flow(P4, items, seed, m_u, modes, stall=0.2)
    assert seen["cycles"] == program_cycles(items, P4)


LONG = [Instruction(Opcode.RELU, a_bank=Bank.ACT, a_base=0, m=1024, dst_bank=Bank.ERR,
                    dst_base=0, aux_bank=Bank.WEIGHT, aux_base=0)] * 3 + [Instruction(Opcode.END)]
"""Long enough to send frames and starts while it runs."""


@pytest.mark.parametrize("lanes", sorted(SMALL))
def test_frames_and_starts_while_busy_are_refused(lanes):
    """A WRITE frame while the core runs: STREAM.error BUSY (sticky), the frame dropped to its
    TLAST, nothing written; a start while busy and one while a frame is in flight: ignored,
    STATUS.refused (write 1 to clear); a READ of PROGRAM: OP; after the run, frames work."""
    p = SMALL[lanes]
    rng = np.random.default_rng(5)
    contents = random_banks(rng, p)
    machine = machine_for(p, contents, np.zeros(EXPONENT_REGISTERS), 1, ["nearest"] * 4)
    machine.run(LONG)
    start = regmap(p)["CTRL"].field("start").mask
    refused = regmap(p)["STATUS"].field("refused").mask
    seen = {}

    async def bench(host):
        await host.load(contents, [], program_words(LONG))
        await host.write("CTRL", start)
        assert field(p, "STATUS", "busy", await host.read("STATUS"))
        await host.frame(write_frame(p, Bank.ERR, 0, [0x55] * 8))  # while busy
        await host.frame(write_frame(p, PROGRAM, 0, [0] * 4, PROGRAM_WORDS))
        seen["busy_error"] = await host.read("STREAM")
        await host.write("CTRL", start)  # while busy
        seen["busy_refused"] = await host.read("STATUS")
        while field(p, "STATUS", "busy", await host.read("STATUS")):
            pass
        seen["cycles"] = await host.read("CYCLES")
        await host.write("STATUS", refused)
        seen["cleared"] = await host.read("STATUS")
        await host.write("CTRL", regmap(p)["CTRL"].field("stream_clear").mask)
        seen["stream_cleared"] = await host.read("STREAM")
        await host.frame(read_frame(p, PROGRAM, 0, 1, PROGRAM_WORDS))
        await host.ctx.tick().repeat(SETTLE)
        seen["read_program"] = await host.read("STREAM")
        await host.write("CTRL", regmap(p)["CTRL"].field("stream_clear").mask)
        header = write_frame(p, Bank.WEIGHT, 0, [7])
        await host.frame(header[:1], last=False)  # a frame in flight
        await host.write("CTRL", start)
        seen["loading"] = await host.read("STATUS")
        await host.frame(header[1:])
        await host.ctx.tick().repeat(SETTLE)
        seen["after"] = await host.read("STATUS")
        await host.read_banks()

    frames = simulate(p, bench, 1)
    assert seen["busy_error"] == Error.BUSY
    assert field(p, "STATUS", "refused", seen["busy_refused"])
    assert seen["cycles"] == program_cycles(LONG, p)
    assert not field(p, "STATUS", "refused", seen["cleared"])
    assert seen["stream_cleared"] == Error.NONE
    assert seen["read_program"] == Error.OP
    loading = seen["loading"]
    assert field(p, "STATUS", "refused", loading) and not field(p, "STATUS", "busy", loading)
    assert not field(p, "STATUS", "loading", seen["after"])
    got = banks_of(p, frames)
    machine.banks[Bank.WEIGHT][:p.lanes] = [7] + [0] * (p.lanes - 1)  # the frame after the run
    for bank in Bank:
        assert got[bank] == machine.banks[bank].tolist(), bank.name


def test_registers_read_their_reset_values_and_unmapped_words_answer_slverr():
    p = SMALL[8]
    seen = {}

    async def bench(host):
        for reg in regmap(p).registers:
            seen[reg.name] = await host.axil.read(reg.offset)
        seen["unmapped"] = await host.axil.read(0x100)
        seen["write_unmapped"] = await host.axil.write(0x100, 1)
        seen["write_const"] = await host.axil.write(offset(p, "ID"), 0)
        seen["id"] = await host.read("ID")

    simulate(p, bench)
    for reg in regmap(p).registers:
        assert seen[reg.name] == (reg.reset, 0), reg.name
    assert seen["unmapped"] == (0, 2) and seen["write_unmapped"] == 2
    assert seen["write_const"] == 0 and seen["id"] == regmap(p)["ID"].reset


def test_the_core_map_follows_the_hardware():
    """CAUSE names every Refusal; PC and the exponents are as wide as the core's; HW_* hold the
    parameters and the bank sizes."""
    p = SMALL[8]
    rm, top = regmap(p), CoreTop(p, PROGRAM_WORDS)
    doc = rm["CAUSE"].field("cause").doc
    assert all(f"{r.value} {r.name.lower()}" in doc for r in Refusal)
    assert rm["CAUSE"].field("cause").width == Refusal.as_shape().width
    assert rm["PC"].field("pc").width == len(top.core.pc)
    assert rm["EXP_INDEX"].field("index").width == len(top.core.exp_rd.index)
    assert rm["HW_PROGRAM"].reset == PROGRAM_WORDS
    assert rm["HW_BANK_ACC"].reset == p.tensor_buffer_words
    assert [r.offset for r in rm.registers] == sorted(r.offset for r in rm.registers)
    assert all(r.offset % WORD_BYTES == 0 for r in rm.registers)


def test_lanes_below_four_are_refused():
    with pytest.raises(ValueError, match="the core top needs lanes >= 4"):
        CoreTop(SMALL[4].replace(lanes=2, lfsr_lanes=2), PROGRAM_WORDS)


def test_checked_in_verilog_is_up_to_date():
    from niti_hw.params import DEFAULT
    from niti_hw.rtl.verilog import generate

    checked_in = (Path(__file__).resolve().parent.parent / "rtl" / "core_top.v").read_text()
    assert checked_in == generate("core_top", DEFAULT), \
        "rtl/core_top.v is stale: run `niti-hw generate --out rtl --unit core_top`"


@pytest.mark.parametrize("lanes", sorted(SMALL))
def test_read_answers_start_at_the_formula_and_flow_a_beat_per_cycle(lanes):
    """Full rate (no gaps, m_axis always ready): a READ's first beat CORE_STREAM_READ_LATENCY
    cycles after its header's last beat, then one beat per cycle, TLAST on the last only."""
    p = SMALL[lanes]
    top = CoreTop(p, PROGRAM_WORDS)
    rng = random.Random(0)
    frames = [read_frame(p, bank, 3, 20) for bank in Bank]
    watch = ("s_axis_tvalid", "s_axis_tready", "s_axis_tlast", *WATCH)

    async def bench(ctx):
        axis = AxisInProcess(ctx, top, "core top", rng)
        for frame in frames:
            await axis.send(as_beats(p, frame))
        await ctx.tick().repeat(40)

    trace = [dict(zip(watch, cycle)) for cycle in run_testbench(
        top, bench, watch=[getattr(top, name) for name in watch],
        beside=[axis_ready(top, rng, 0.0)])]
    headers = [n for n, c in enumerate(trace) if c["s_axis_tvalid"] and c["s_axis_tready"]
               and c["s_axis_tlast"]]
    answers_at = [n for n, c in enumerate(trace) if c["m_axis_tvalid"] and c["m_axis_tready"]]
    lasts = [n for n in answers_at if trace[n]["m_axis_tlast"]]
    assert len(answers_at) == 20 * len(Bank) and len(lasts) == len(Bank)
    for k, header in enumerate(headers):
        first = answers_at[20 * k]
        assert first - header == CORE_STREAM_READ_LATENCY
        assert answers_at[20 * k:20 * (k + 1)] == list(range(first, first + 20))
        assert lasts[k] == first + 19
