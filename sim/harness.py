"""Bench plumbing shared by every unit: clock/reset, stream driver and monitor, scoreboard.

Streams follow amaranth.lib.stream: a beat moves on a rising edge where valid and ready are both
high. The driver inserts random valid gaps, the monitor random ready gaps (backpressure); both record
the cycle of every transfer so benches can check latency and throughput exactly.

Nothing waits for ever: a driver whose beat is not taken, or a monitor that sees no beat, for
`patience` cycles fails with the unit's name and the count seen; after the expected beats a drain
window fails on any extra one; `BENCH_TIMEOUT` bounds a whole cocotb test as a last resort.
The scoreboard counts what it compared (output beats and values), and those are the vector counts a
bench records.
"""

from __future__ import annotations

import json
import os
import random

import cocotb
from amaranth.lib import data
from cocotb.clock import Clock
from cocotb.triggers import ReadOnly, RisingEdge
from cocotb.utils import get_sim_time

from niti_hw.params import HardwareParams

PERIOD_NS = 10
PATIENCE = 2000  # cycles without a transfer before a stream is declared stuck
DRAIN = 100  # cycles watched for extra output beats after the expected ones
# Keyword arguments for @cocotb.test: a backstop far above any bench's run (patience fails first).
BENCH_TIMEOUT = {"timeout_time": 50, "timeout_unit": "ms"}


def bench_params() -> HardwareParams:
    """The parameter object the test process built (passed as JSON through the environment)."""
    return HardwareParams.from_json(os.environ["NITI_HW_PARAMS"])


def bench_int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def bench_direction(name: str) -> str:
    """"forward" or "backward", from the environment variable `name` (default forward)."""
    value = os.environ.get(name, "forward")
    if value not in ("forward", "backward"):
        raise ValueError(f"{name} must be forward or backward; got {value!r}")
    return value


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


def to_python(value):
    """A payload read back through its layout as plain ints, lists (arrays) and dicts (structs)."""
    if isinstance(value, data.Const):
        layout = data.Layout.cast(value.shape())
        if isinstance(layout, data.ArrayLayout):
            return [to_python(item) for item in value]
        return {name: to_python(value[name]) for name, _ in layout}
    return value if isinstance(value, (dict, list)) else int(value)


def decode(layout, raw: int):
    """Raw payload bits as a layout view (fields by attribute), or the int of a plain shape."""
    return layout.from_bits(raw) if isinstance(layout, data.Layout) else raw


class StreamDriver:
    """Sends payloads (dicts for the Amaranth layout) on `<prefix>__valid/payload/ready`."""

    def __init__(self, dut, prefix: str, layout, rng: random.Random, gap: float = 0.0,
                 unit: str | None = None, patience: int = PATIENCE):
        self.clk = dut.clk
        self.valid = getattr(dut, f"{prefix}__valid")
        self.ready = getattr(dut, f"{prefix}__ready")
        self.payload = getattr(dut, f"{prefix}__payload")
        self.layout, self.rng, self.gap = layout, rng, gap
        self.unit, self.prefix, self.patience = unit or dut._name, prefix, patience
        self.accepted_at: list[int] = []

    async def send(self, beats) -> None:
        pending = list(beats)
        index = waited = 0
        while index < len(pending):
            if self.gap and self.rng.random() < self.gap:
                self.valid.value = 0
            else:
                self.valid.value = 1
                self.payload.value = self.layout.const(pending[index]).as_bits()
            await ReadOnly()
            offered = int(self.valid.value)
            moved = offered and int(self.ready.value)
            now = cycle()
            await RisingEdge(self.clk)
            if moved:
                self.accepted_at.append(now)
                index += 1
                waited = 0
            elif offered:
                waited += 1
                if waited >= self.patience:
                    self.valid.value = 0
                    raise AssertionError(
                        f"{self.unit}: input `{self.prefix}` not ready for {self.patience} cycles; "
                        f"{index} of {len(pending)} beats accepted")
        self.valid.value = 0


class StreamMonitor:
    """Accepts beats on `<prefix>__valid/payload/ready`, with random backpressure.

    `beats` holds each payload (see `decode`), `received_at` its cycle.
    """

    def __init__(self, dut, prefix: str, layout, rng: random.Random, stall: float = 0.0,
                 unit: str | None = None, patience: int = PATIENCE):
        self.clk = dut.clk
        self.valid = getattr(dut, f"{prefix}__valid")
        self.ready = getattr(dut, f"{prefix}__ready")
        self.payload = getattr(dut, f"{prefix}__payload")
        self.layout, self.rng, self.stall = layout, rng, stall
        self.unit, self.prefix, self.patience = unit or dut._name, prefix, patience
        self.beats: list = []
        self.received_at: list[int] = []

    async def collect(self, count: int) -> None:
        """Take beats until `count` have arrived in total; fail after `patience` idle cycles."""
        idle = 0
        while len(self.beats) < count:
            self.ready.value = 0 if (self.stall and self.rng.random() < self.stall) else 1
            await ReadOnly()
            if int(self.valid.value) and int(self.ready.value):
                self.beats.append(decode(self.layout, self.payload.value.to_unsigned()))
                self.received_at.append(cycle())
                idle = 0
            else:
                idle += 1
            await RisingEdge(self.clk)
            if idle >= self.patience:
                self.ready.value = 0
                raise AssertionError(
                    f"{self.unit}: timed out on output `{self.prefix}`: saw {len(self.beats)} of "
                    f"{count} expected beats, none in the last {self.patience} cycles")
        self.ready.value = 0

    async def drain(self, cycles: int = DRAIN) -> None:
        """Hold ready high for `cycles` cycles; any beat offered now is one too many."""
        self.ready.value = 1
        for waited in range(cycles):
            await ReadOnly()
            if int(self.valid.value):
                raw = self.payload.value.to_unsigned()
                await RisingEdge(self.clk)
                self.ready.value = 0
                raise AssertionError(
                    f"{self.unit}: extra beat on output `{self.prefix}` {waited + 1} cycles after "
                    f"the expected {len(self.beats)}: {to_python(decode(self.layout, raw))!r}")
            await RisingEdge(self.clk)
        self.ready.value = 0


def _flatten(value, prefix: str = ""):
    """(path, leaf) pairs of nested dicts/lists; None leaves are don't-cares."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _flatten(item, f"{prefix}.{key}" if prefix else key)
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            yield from _flatten(item, f"{prefix}[{index}]")
    else:
        yield prefix, value


class Scoreboard:
    """Compares output beats against the golden model's, field by field, and counts them.

    `vectors` is the number of output beats compared, `values` the number of scalar fields in
    them that were compared (a None in the expected beat is a don't-care and is not counted).
    """

    def __init__(self, name: str, log):
        self.name, self.log = name, log
        self.vectors = 0
        self.values = 0

    def compare_beats(self, what: str, got: list, expected: list) -> None:
        if len(got) != len(expected):
            raise AssertionError(f"{self.name}: {what}: RTL gave {len(got)} beats, golden model "
                                 f"{len(expected)}")
        for index, (got_beat, want_beat) in enumerate(zip(got, expected)):
            got_fields = dict(_flatten(to_python(got_beat)))
            for path, want in _flatten(want_beat):
                if want is None:
                    continue
                if got_fields.get(path) != want:
                    raise AssertionError(
                        f"{self.name}: {what}, beat {index}, `{path or 'value'}`: RTL gave "
                        f"{got_fields.get(path)!r}, golden model {want!r}")
                self.values += 1
            self.vectors += 1

    @property
    def checked(self) -> int:
        """Values compared so far (benches that compare item by item count these)."""
        return self.values

    def compare(self, what: str, got, expected) -> None:
        """Compare one whole item (any ==-comparable value); counts one value, no beat."""
        if got != expected:
            raise AssertionError(f"{self.name}: {what}: RTL gave {got!r}, golden model {expected!r}")
        self.values += 1

    def report(self) -> dict:
        self.log.info("%s: %d output beats (%d values) matched the golden model", self.name,
                      self.vectors, self.values)
        return {"vectors": self.vectors, "values": self.values}


def record(values: dict) -> None:
    """Append measured numbers for the test process (NITI_HW_REPORT names a JSON-lines file)."""
    path = os.environ.get("NITI_HW_REPORT")
    if path:
        with open(path, "a") as f:
            f.write(json.dumps(values) + "\n")


async def stream_through(dut, in_layout, out_layout, beats, out_count, gap, stall, seed,
                         unit: str | None = None, drain: int = DRAIN, patience: int = PATIENCE):
    """Drive `beats` into `i`, collect `out_count` beats from `o`, then watch `drain` cycles for
    extra ones. Fails (never hangs) when the unit drops, withholds or adds beats."""
    rng = random.Random(seed)
    driver = StreamDriver(dut, "i", in_layout, rng, gap=gap, unit=unit, patience=patience)
    monitor = StreamMonitor(dut, "o", out_layout, rng, stall=stall, unit=unit, patience=patience)
    await send_and_collect(driver, beats, monitor, out_count, drain)
    return driver, monitor


async def send_and_collect(driver: StreamDriver, beats, monitor: StreamMonitor, total: int,
                           drain: int = DRAIN) -> None:
    """Send `beats` while collecting until the monitor has `total` beats, then watch `drain` cycles
    for extra ones. Every wait is bounded by the streams' patience."""
    collect = cocotb.start_soon(monitor.collect(total))
    try:
        await driver.send(beats)
    except AssertionError:
        collect.cancel()
        raise
    await collect
    if drain:
        await monitor.drain(drain)
