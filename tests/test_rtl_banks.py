"""The banks' ECP5 form (DP16KD instances with their output registers, `rtl/bank_ram.py`) against
the portable form the core's tests run: random writes and reads on every port, the read rows equal
cycle by cycle. The DP16KD is a black box to simulation, so each instance is replaced by a model of
the 36-bit pseudo dual port mode read from the instance's own pins (address on AD13..AD5, byte
enables on ADA3..ADA0, the word's halves on the A and B data pins, OUTREG)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("amaranth", reason="needs the rtl extra: pip install 'niti-hw[rtl]'")

from amaranth.hdl import Cat, Const, Elaboratable, Fragment, Module, Signal  # noqa: E402
from amaranth.lib import memory  # noqa: E402
from amaranth.sim import Simulator  # noqa: E402

from niti_hw.params import HardwareParams  # noqa: E402
from niti_hw.program.isa import Bank  # noqa: E402
from niti_hw.rtl import bank_ram  # noqa: E402
from niti_hw.rtl.banks import READ_PORTS, WRITE_PORTS, Banks, bank_rows  # noqa: E402
from niti_hw.rtl.synth import SynthTarget  # noqa: E402

# ERR (1,280 rows) and ACC (640) span several 512-row tiles, WEIGHT (256) one
P = HardwareParams(rows=4, cols=4, lanes=4, lfsr_lanes=8, ifmap_sram_kib=1, ofmap_sram_kib=5,
                   filter_sram_kib=1, tensor_buffer_words=2560)
CYCLES = 1500


class OnEcp5(Elaboratable):
    """A unit elaborated for ECP5 inside a simulation."""

    def __init__(self, unit):
        self.unit = unit

    def elaborate(self, platform):
        return Fragment.get(self.unit, SynthTarget("ecp5"))


class X36Model(Elaboratable):
    """A DP16KD in 36-bit pseudo dual port mode with both output registers, from its pins."""

    def __init__(self, instance):
        assert instance.parameters["DATA_WIDTH_A"] == instance.parameters["DATA_WIDTH_B"] == 36
        assert instance.parameters["REGMODE_A"] == instance.parameters["REGMODE_B"] == "OUTREG"
        self.pins = {name: value for name, (value, _) in instance.ports.items()}
        for name in ("ADA4", "ADB0", "ADB1", "ADB2", "ADB3", "ADB4", "WEB", "RSTA", "RSTB"):
            assert isinstance(self.pins[name], Const) and self.pins[name].value == 0, name

    def elaborate(self, platform):
        pin = self.pins
        m = Module()
        m.submodules.ram = ram = memory.Memory(shape=36, depth=512, init=[])
        wr, rd = ram.write_port(granularity=9), ram.read_port()
        m.d.comb += [
            wr.addr.eq(Cat(*[pin[f"ADA{n}"] for n in range(5, 14)])),
            wr.data.eq(Cat(*[pin[f"DIA{n}"] for n in range(18)],
                           *[pin[f"DIB{n}"] for n in range(18)])),
            wr.en.eq(Cat(*[pin[f"ADA{n}"] for n in range(4)])
                     & (pin["CEA"] & pin["WEA"]).replicate(4)),
            rd.addr.eq(Cat(*[pin[f"ADB{n}"] for n in range(5, 14)])), rd.en.eq(pin["CEB"]),
        ]
        out = Signal(36)
        with m.If(pin["OCEA"] & pin["OCEB"]):
            m.d.sync += out.eq(rd.data)
        m.d.comb += [pin[f"DOA{n}"].eq(out[n]) for n in range(18)]
        m.d.comb += [pin[f"DOB{n}"].eq(out[18 + n]) for n in range(18)]
        return m


def test_ecp5_form_reads_as_the_portable_form(monkeypatch):
    models = []

    def model(*args):
        models.append(X36Model(build(*args)))
        return models[-1]

    build = bank_ram._dp16kd_x36
    monkeypatch.setattr(bank_ram, "_dp16kd_x36", model)
    rows = bank_rows(P)
    assert rows[Bank.ERR] > 2 * bank_ram.X36_DEPTH and rows[Bank.ACC] > bank_ram.X36_DEPTH
    portable, ecp5 = Banks(P), Banks(P)
    top = Module()
    top.submodules.portable = portable
    top.submodules.ecp5 = OnEcp5(ecp5)
    fragment = Fragment.get(top, None)  # elaborated once: the models below are the simulated ones
    assert len(models) == READ_PORTS * sum(
        -(-rows[bank] // 512) * -(-P.lanes * bits // 32) for bank, bits in ecp5.value_bits.items())
    rng = np.random.default_rng(5)
    compared, filled = [0], [0]

    async def bench(ctx):
        pending = []  # (cycle due, port) of reads issued
        for cycle in range(CYCLES):
            for index in range(WRITE_PORTS):
                bank = Bank(int(rng.integers(len(Bank))))
                values = {"en": int(rng.random() < 0.7), "bank": int(bank),
                          "row": _row(rng, rows[bank]), "mask": int(rng.integers(16))}
                data = rng.integers(-2**31, 2**31, P.lanes)
                for unit in (portable, ecp5):
                    for name, value in values.items():
                        ctx.set(getattr(unit.wr[index], name), value)
                    ctx.set(unit.wr[index].data, [int(v) for v in data])
            for index in range(READ_PORTS):
                bank = Bank(int(rng.integers(len(Bank))))
                values = {"en": int(rng.random() < 0.8), "bank": int(bank),
                          "row": _row(rng, rows[bank])}
                for unit in (portable, ecp5):
                    for name, value in values.items():
                        ctx.set(getattr(unit.rd[index], name), value)
            await ctx.tick()
            if cycle > 4:
                for index in range(READ_PORTS):
                    expected = [ctx.get(portable.rd[index].data[n]) for n in range(P.lanes)]
                    got = [ctx.get(ecp5.rd[index].data[n]) for n in range(P.lanes)]
                    assert got == expected, f"cycle {cycle} port {index}"
                    compared[0] += 1
                    filled[0] += any(expected)

    sim = Simulator(fragment)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    assert compared[0] == READ_PORTS * (CYCLES - 5)
    assert filled[0] > compared[0] // 4, "too few reads of written rows"


def _row(rng, rows: int) -> int:
    """A row near the tile edges half the time, so every tile is written and read back often."""
    if rng.random() < 0.5:
        return int(rng.integers(rows))
    return int(min(rows - 1, max(0, 512 * rng.integers(rows // 512 + 1) + rng.integers(-3, 3))))
