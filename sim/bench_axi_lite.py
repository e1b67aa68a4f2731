"""ControlRegisters bench through cocotbext-axi's AxiLiteMaster: the register map of
niti_hw.registers on the wire.

Reset values of every register equal the map; the hardware-parameter registers equal the
HardwareParams the unit was generated for; RW registers read back random data written with random
WSTRB, AW/W order and gaps, and backpressure on B and R; CONST and RO fields ignore writes;
unmapped words answer SLVERR both ways and change nothing; CTRL.start and CTRL.soft_reset pulse one
cycle; a run offers the CFG registers as one cfg beat, and CYCLES equals the cycles in which busy
was set. A watcher checks every response's latency (niti_hw.perf.timing.AXI_LITE_LATENCY) and the
start-to-busy latency (CONTROL_START_LATENCY).
"""

from __future__ import annotations

import logging
import random

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ReadOnly, RisingEdge, SimTimeoutError, with_timeout
from cocotbext.axi import AxiLiteBus, AxiLiteMaster, AxiResp
from cocotbext.axi.axil_channels import AxiLiteAWTransaction, AxiLiteWTransaction
from harness import (BENCH_TIMEOUT, PERIOD_NS, Scoreboard, StreamMonitor, bench_int, bench_params,
                     cycle, record, to_python)

from niti_hw.params import ROUND_MODES
from niti_hw.perf.timing import AXI_LITE_LATENCY, CONTROL_START_LATENCY, TENSOR_CFG_FIELDS
from niti_hw.registers import CFG_REGISTERS, WORD_BYTES, register_map
from niti_hw.rtl.datapath import tensor_cfg_layout

PATIENCE = 200  # cycles a response may take before the bench fails


class Watcher:
    """Samples the bus every cycle: the cycle of each AW, W and AR handshake, of each new B and R
    response, of each start and soft_reset strobe, and the lengths of the busy stretches."""

    def __init__(self, dut):
        self.dut = dut
        self.at = {name: [] for name in ("aw", "w", "ar", "b", "r", "start", "soft_reset",
                                         "busy_rise")}
        self.busy_stretches: list[int] = []
        self._busy = 0
        self._offered = {"b": False, "r": False}

    def sig(self, name):
        return getattr(self.dut, f"s_axil_{name}")

    async def run(self) -> None:
        while True:
            await RisingEdge(self.dut.clk)
            await ReadOnly()
            now = cycle()
            for ch in ("aw", "w", "ar"):
                if int(self.sig(f"{ch}valid").value) and int(self.sig(f"{ch}ready").value):
                    self.at[ch].append(now)
            for ch in ("b", "r"):
                valid = int(self.sig(f"{ch}valid").value)
                if valid and not self._offered[ch]:
                    self.at[ch].append(now)
                self._offered[ch] = bool(valid) and not int(self.sig(f"{ch}ready").value)
            for name in ("start", "soft_reset"):
                if int(getattr(self.dut, name).value):
                    self.at[name].append(now)
            busy = int(self.dut.busy.value)
            if busy:
                if not self._busy:
                    self.at["busy_rise"].append(now)
                    self.busy_stretches.append(0)
                self.busy_stretches[-1] += 1
            self._busy = busy

    def check_latencies(self, board: Scoreboard) -> None:
        """Every B AXI_LITE_LATENCY cycles after the later of its AW and W, every R after its AR."""
        writes = list(zip(self.at["aw"], self.at["w"], self.at["b"]))
        assert len(writes) == len(self.at["b"]), "a B response without its AW and W handshakes"
        for n, (aw, w, b) in enumerate(writes):
            board.compare(f"write {n} latency", b - max(aw, w), AXI_LITE_LATENCY)
        reads = list(zip(self.at["ar"], self.at["r"]))
        assert len(reads) == len(self.at["r"]), "an R response without its AR handshake"
        for n, (ar, r) in enumerate(reads):
            board.compare(f"read {n} latency", r - ar, AXI_LITE_LATENCY)


async def setup(dut):
    """Clock, idle inputs, the master and the watcher; reset for two cycles."""
    cocotb.start_soon(Clock(dut.clk, PERIOD_NS, unit="ns").start())
    for name in ("done", "error", "cfg__ready"):
        getattr(dut, name).value = 0
    dut.rst.value = 1
    axi = AxiLiteMaster(AxiLiteBus.from_prefix(dut, "s_axil"), dut.clk, dut.rst)
    logging.getLogger(f"cocotb.{dut._name}.s_axil").setLevel(logging.WARNING)  # one line per access
    watcher = Watcher(dut)
    cocotb.start_soon(watcher.run())
    for _ in range(2):
        await RisingEdge(dut.clk)
    dut.rst.value = 0
    await RisingEdge(dut.clk)
    return axi, watcher


def pauses(rng: random.Random, chance: float):
    while True:
        yield rng.random() < chance


def backpressure(axi, rng: random.Random, chance: float) -> None:
    """Random pauses on every channel of the master: AW/W in random order, B/R held back."""
    for channel in (axi.write_if.aw_channel, axi.write_if.w_channel, axi.write_if.b_channel,
                    axi.read_if.ar_channel, axi.read_if.r_channel):
        channel.set_pause_generator(pauses(rng, chance) if chance else None)
        channel.pause = False  # a cleared generator leaves its last value


async def bounded(what: str, access):
    """Await one bus access, failing (never hanging) after PATIENCE cycles."""
    try:
        return await with_timeout(access, PATIENCE * PERIOD_NS, "ns")
    except SimTimeoutError:
        raise AssertionError(f"control registers: {what} got no response in {PATIENCE} "
                             "cycles") from None


async def read(axi, addr: int) -> tuple[int, AxiResp]:
    """The word at `addr` (word-aligned: AxiLiteMaster splits a read across words)."""
    resp = await bounded(f"read of {addr:#x}", axi.read(addr, WORD_BYTES))
    return int.from_bytes(resp.data, "little"), resp.resp


async def write(axi, addr: int, value: int) -> AxiResp:
    data = value.to_bytes(WORD_BYTES, "little")
    return (await bounded(f"write to {addr:#x}", axi.write(addr, data))).resp


async def write_strobed(axi, addr: int, data: int, strb: int, lead: str, gap: int) -> AxiResp:
    """One write with any WSTRB on the master's own channel drivers: AW and W together, or the
    `lead` channel first and the other `gap` cycles after its handshake."""
    wr = axi.write_if
    aw = AxiLiteAWTransaction(awaddr=addr, awprot=0)
    w = AxiLiteWTransaction(wdata=data, wstrb=strb)
    if lead == "together":
        await wr.aw_channel.send(aw)
        await wr.w_channel.send(w)
    else:
        first, second = ((wr.aw_channel, aw), (wr.w_channel, w))[::1 if lead == "aw" else -1]
        await first[0].send(first[1])
        await first[0].wait()
        for _ in range(gap):
            await RisingEdge(axi.write_if.clock)
        await second[0].send(second[1])
    b = await bounded(f"write to {addr:#x} (wstrb {strb:04b}, {lead} first)", wr.b_channel.recv())
    return AxiResp(int(b.bresp))


def byte_bits(strb: int) -> int:
    return sum(0xFF << 8 * n for n in range(WORD_BYTES) if strb >> n & 1)


@cocotb.test(**BENCH_TIMEOUT)
async def reset_values_and_hardware_parameters(dut):
    """Every register reads its reset value from the map, OKAY; HW_* equal the HardwareParams."""
    p = bench_params()
    regmap = register_map(p)
    axi, watcher = await setup(dut)
    board = Scoreboard("control registers reset", dut._log)
    words = {}
    for reg in regmap.registers:
        words[reg.name], resp = await read(axi, reg.offset)
        board.compare(f"{reg.name} response", resp, AxiResp.OKAY)
        board.compare(f"{reg.name} reset value", words[reg.name], reg.reset)

    def field(reg: str, name: str) -> int:
        f = regmap[reg].field(name)
        return (words[reg] & f.mask) >> f.lsb

    expected = {("HW_ARRAY", "rows"): p.rows, ("HW_ARRAY", "cols"): p.cols,
                ("HW_LANES", "lanes"): p.lanes, ("HW_LANES", "lfsr_lanes"): p.lfsr_lanes,
                ("HW_NUMBERS", "acc_bits"): p.acc_bits,
                ("HW_NUMBERS", "round_mode"): ROUND_MODES.index(p.round_mode),
                ("HW_TENSOR_WORDS", "words"): p.tensor_buffer_words,
                ("HW_MAX_K", "max_k"): p.max_k, ("HW_LFSR_SEED", "seed"): p.lfsr_seed}
    for (reg, name), value in expected.items():
        board.compare(f"{reg}.{name}", field(reg, name), value)
    board.compare("ID", words["ID"].to_bytes(4, "big"), b"NITI")
    watcher.check_latencies(board)
    record({"test": "reset", **board.report()})


@cocotb.test(**BENCH_TIMEOUT)
async def read_write_random_strobes(dut):
    """RW registers: random data, random WSTRB (the master's byte writes and raw strobes), random
    AW/W order and gaps, random backpressure on every channel; each read back against a model."""
    regmap = register_map(bench_params())
    axi, watcher = await setup(dut)
    rng = random.Random(bench_int("NITI_HW_SEED", 1))
    board = Scoreboard("control registers RW", dut._log)
    rw = [reg for reg in regmap.registers if all(f.access == "RW" for f in reg.fields)]
    model = {reg.name: reg.reset for reg in rw}
    leads = {"together": 0, "aw": 0, "w": 0, "master": 0}
    for n in range(bench_int("NITI_HW_VECTORS", 200)):
        backpressure(axi, rng, rng.choice([0.0, 0.3, 0.6]))
        reg = rng.choice(rw)
        fields = sum(f.mask for f in reg.fields)
        data = rng.getrandbits(32)
        lead = rng.choice(list(leads))
        if lead == "master":  # bytes first..last of the word through AxiLiteMaster.write
            first = rng.randrange(WORD_BYTES)
            count = rng.randrange(1, WORD_BYTES - first + 1)
            payload = data.to_bytes(WORD_BYTES, "little")[first:first + count]
            strb = ((1 << count) - 1) << first
            resp = (await bounded(f"write to {reg.name}",
                                  axi.write(reg.offset + first, payload))).resp
        else:
            strb = rng.getrandbits(WORD_BYTES)
            resp = await write_strobed(axi, reg.offset + rng.randrange(WORD_BYTES), data, strb,
                                       lead, rng.randrange(1, 5))
        leads[lead] += 1
        board.compare(f"write {n} to {reg.name} response", resp, AxiResp.OKAY)
        mask = byte_bits(strb) & fields
        model[reg.name] = (model[reg.name] & ~mask) | (data & mask)
        got, resp = await read(axi, reg.offset)
        board.compare(f"read {n} of {reg.name} response", resp, AxiResp.OKAY)
        board.compare(f"read {n} of {reg.name} (data {data:#010x}, wstrb {strb:04b}, {lead})",
                      got, model[reg.name])
    backpressure(axi, rng, 0.0)
    assert min(leads.values()) > 0, leads
    watcher.check_latencies(board)
    record({"test": "rw", **board.report(), **leads})


@cocotb.test(**BENCH_TIMEOUT)
async def read_only_and_unmapped(dut):
    """CONST/RO/W1C registers ignore writes (OKAY); unmapped words answer SLVERR and read 0."""
    regmap = register_map(bench_params())
    axi, watcher = await setup(dut)
    rng = random.Random(bench_int("NITI_HW_SEED", 1) + 1)
    board = Scoreboard("control registers RO and unmapped", dut._log)
    fixed = [reg for reg in regmap.registers
             if all(f.access in ("CONST", "RO", "W1C") for f in reg.fields)]
    for reg in fixed:
        board.compare(f"write to {reg.name}", await write(axi, reg.offset, 0xFFFFFFFF),
                      AxiResp.OKAY)
        board.compare(f"{reg.name} after the write", await read(axi, reg.offset),
                      (reg.reset, AxiResp.OKAY))
    window = 1 << regmap.addr_bits
    unmapped = [a for a in range(0, window, WORD_BYTES) if regmap.at(a) is None]
    picks = unmapped[:16] + rng.sample(unmapped, 32) + [window - WORD_BYTES]
    for addr in picks:
        addr += rng.randrange(WORD_BYTES)
        board.compare(f"write to unmapped {addr:#x}",
                      await write_strobed(axi, addr, rng.getrandbits(32), 0xF,
                                          rng.choice(["together", "aw", "w"]), 2), AxiResp.SLVERR)
        word = addr - addr % WORD_BYTES  # a read at addr would span two words
        board.compare(f"read of unmapped {word:#x}", await read(axi, word), (0, AxiResp.SLVERR))
    for reg in regmap.registers:  # nothing changed
        board.compare(f"{reg.name} at the end", await read(axi, reg.offset),
                      (reg.reset, AxiResp.OKAY))
    watcher.check_latencies(board)
    record({"test": "unmapped", **board.report(), "unmapped": len(picks)})


@cocotb.test(**BENCH_TIMEOUT)
async def runs_pulses_and_cycles(dut):
    """Runs: CFG written, CTRL.start, the cfg beat taken with backpressure, `done` after a random
    time; STATUS, CYCLES (the busy cycles the watcher counted), W1C; start while busy and soft
    reset; one-cycle strobes."""
    regmap = register_map(bench_params())
    axi, watcher = await setup(dut)
    rng = random.Random(bench_int("NITI_HW_SEED", 1) + 2)
    board = Scoreboard("control registers runs", dut._log)
    status, ctrl, cycles_reg = regmap["STATUS"], regmap["CTRL"], regmap["CYCLES"]
    bit = {name: 1 << status.field(name).lsb for name in ("busy", "done", "error")}
    start, soft = (1 << ctrl.field(name).lsb for name in ("start", "soft_reset"))
    monitor = StreamMonitor(dut, "cfg", tensor_cfg_layout(), rng, stall=0.5,
                            unit="control registers", patience=PATIENCE)
    runs = bench_int("NITI_HW_RUNS", 12)
    for run in range(runs):
        values = {name: rng.getrandbits(bits) for name, bits in TENSOR_CFG_FIELDS.items()}
        for name, fields in CFG_REGISTERS:
            reg = regmap[name]
            await write(axi, reg.offset, sum(values[f] << reg.field(f).lsb for f in fields))
        write_index = len(watcher.at["b"])
        board.compare(f"run {run} start", await write(axi, ctrl.offset, start), AxiResp.OKAY)
        await monitor.collect(run + 1)
        board.compare(f"run {run} cfg beat", to_python(monitor.beats[-1]), values)
        handshake = max(watcher.at["aw"][write_index], watcher.at["w"][write_index])
        board.compare(f"run {run} start to busy", watcher.at["busy_rise"][-1] - handshake,
                      CONTROL_START_LATENCY)
        await write(axi, ctrl.offset, start)  # ignored while busy
        error = run % 3 == 1
        word, _ = await read(axi, status.offset)
        board.compare(f"run {run} busy", word, bit["busy"])
        for _ in range(rng.randrange(0, 40)):
            await RisingEdge(dut.clk)
        dut.error.value = int(error)
        dut.done.value = 1
        await RisingEdge(dut.clk)
        dut.done.value = 0
        dut.error.value = 0
        board.compare(f"run {run} STATUS after done", await read(axi, status.offset),
                      (bit["done"] | (bit["error"] if error else 0), AxiResp.OKAY))
        board.compare(f"run {run} CYCLES", await read(axi, cycles_reg.offset),
                      (watcher.busy_stretches[-1], AxiResp.OKAY))
        await write(axi, status.offset, bit["done"] | bit["error"])  # W1C
        board.compare(f"run {run} STATUS cleared", await read(axi, status.offset),
                      (0, AxiResp.OKAY))
    board.compare("start strobes (one per run, none while busy)", len(watcher.at["start"]), runs)
    # Soft reset mid-run: busy, CYCLES and the untaken cfg beat go; a start beside it is ignored.
    dut.cfg__ready.value = 0
    await write(axi, ctrl.offset, start)
    await write(axi, ctrl.offset, soft)
    await write(axi, ctrl.offset, soft | start)
    for reg in (status, cycles_reg):
        board.compare(f"{reg.name} after soft reset", await read(axi, reg.offset),
                      (0, AxiResp.OKAY))
    await monitor.drain(20)
    board.compare("start strobes after soft reset", len(watcher.at["start"]), runs + 1)
    board.compare("soft reset strobes", len(watcher.at["soft_reset"]), 2)
    for name in ("start", "soft_reset"):  # one write, one cycle: never two cycles in a row
        at = watcher.at[name]
        board.compare(f"{name} strobes one cycle long", [b - a > 1 for a, b in zip(at, at[1:])],
                      [True] * (len(at) - 1))
    watcher.check_latencies(board)
    record({"test": "runs", **board.report(), "runs": runs,
            "cycles": watcher.busy_stretches[:runs]})
