"""Bench plumbing shared by every unit: clock/reset, stream driver and monitor, scoreboard.

Streams follow amaranth.lib.stream: a beat moves on a rising edge where valid and ready are both
high. The driver inserts random valid gaps, the monitor random ready gaps (backpressure); both record
the cycle of every transfer so benches can check latency and throughput exactly.
"""

from __future__ import annotations

import json
import os
import random

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ReadOnly, RisingEdge
from cocotb.utils import get_sim_time

from niti_hw.params import HardwareParams

PERIOD_NS = 10


def bench_params() -> HardwareParams:
    """The parameter object the test process built (passed as JSON through the environment)."""
    return HardwareParams.from_json(os.environ["NITI_HW_PARAMS"])


def bench_int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def cycle() -> int:
    return int(get_sim_time(unit="ns")) // PERIOD_NS


async def start(dut) -> None:
    """Start the clock and hold reset for two cycles."""
    cocotb.start_soon(Clock(dut.clk, PERIOD_NS, unit="ns").start())
    dut.rst.value = 1
    for name in ("i__valid", "o__ready"):
        getattr(dut, name).value = 0
    for _ in range(2):
        await RisingEdge(dut.clk)
    dut.rst.value = 0


class StreamDriver:
    """Sends payloads (dicts for the Amaranth layout) on `<prefix>__valid/payload/ready`."""

    def __init__(self, dut, prefix: str, layout, rng: random.Random, gap: float = 0.0):
        self.clk = dut.clk
        self.valid = getattr(dut, f"{prefix}__valid")
        self.ready = getattr(dut, f"{prefix}__ready")
        self.payload = getattr(dut, f"{prefix}__payload")
        self.layout, self.rng, self.gap = layout, rng, gap
        self.accepted_at: list[int] = []

    async def send(self, beats) -> None:
        pending = list(beats)
        index = 0
        while index < len(pending):
            if self.gap and self.rng.random() < self.gap:
                self.valid.value = 0
            else:
                self.valid.value = 1
                self.payload.value = self.layout.const(pending[index]).as_bits()
            await ReadOnly()
            moved = int(self.valid.value) and int(self.ready.value)
            now = cycle()
            await RisingEdge(self.clk)
            if moved:
                self.accepted_at.append(now)
                index += 1
        self.valid.value = 0


class StreamMonitor:
    """Accepts beats on `<prefix>__valid/payload/ready`, with random backpressure."""

    def __init__(self, dut, prefix: str, layout, rng: random.Random, stall: float = 0.0):
        self.clk = dut.clk
        self.valid = getattr(dut, f"{prefix}__valid")
        self.ready = getattr(dut, f"{prefix}__ready")
        self.payload = getattr(dut, f"{prefix}__payload")
        self.layout, self.rng, self.stall = layout, rng, stall
        self.beats: list = []
        self.received_at: list[int] = []

    async def collect(self, count: int) -> None:
        while len(self.beats) < count:
            self.ready.value = 0 if (self.stall and self.rng.random() < self.stall) else 1
            await ReadOnly()
            if int(self.valid.value) and int(self.ready.value):
                raw = self.payload.value.to_unsigned()
                self.beats.append(self.layout.from_bits(raw) if hasattr(self.layout, "from_bits") else raw)
                self.received_at.append(cycle())
            await RisingEdge(self.clk)
        self.ready.value = 0


class Scoreboard:
    """Compares received items against the golden model's, item by item, and counts them."""

    def __init__(self, name: str, log):
        self.name, self.log = name, log
        self.checked = 0

    def compare(self, what: str, got, expected) -> None:
        if got != expected:
            raise AssertionError(f"{self.name}: {what}: RTL gave {got!r}, golden model {expected!r}")
        self.checked += 1

    def report(self) -> None:
        self.log.info("%s: %d items matched the golden model", self.name, self.checked)


def record(values: dict) -> None:
    """Append measured numbers for the test process (NITI_HW_REPORT names a JSON-lines file)."""
    path = os.environ.get("NITI_HW_REPORT")
    if path:
        with open(path, "a") as f:
            f.write(json.dumps(values) + "\n")


async def stream_through(dut, in_layout, out_layout, beats, out_count, gap, stall, seed):
    """Drive `beats` into `i` while collecting `out_count` beats from `o`."""
    rng = random.Random(seed)
    driver = StreamDriver(dut, "i", in_layout, rng, gap=gap)
    monitor = StreamMonitor(dut, "o", out_layout, rng, stall=stall)
    collect = cocotb.start_soon(monitor.collect(out_count))
    await driver.send(beats)
    await collect
    return driver, monitor
