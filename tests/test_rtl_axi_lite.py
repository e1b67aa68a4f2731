"""Fast tier: the AXI4-Lite register slave and the control block in `amaranth.sim`, in-process.

AW before W, W before AW and both together; random WSTRB; backpressure on B and R (the response
must hold, and no second access may be taken meanwhile); SLVERR on unmapped words; W1P and W1C
strobes; start, busy, done, error, CYCLES and the cfg beat of `ControlRegisters`.
"""

import random
import sys
from pathlib import Path

import pytest

from niti_hw.params import DEFAULT
from niti_hw.perf.timing import AXI_LITE_LATENCY, CONTROL_START_LATENCY, TENSOR_CFG_FIELDS
from niti_hw.registers import (CFG_REGISTERS, Field, Register, RegisterMap, port_name,
                               register_map)

pytest.importorskip("amaranth", reason="needs the rtl extra: pip install 'niti-hw[rtl]'")
pytest.importorskip("cocotb", reason="needs the rtl extra: pip install 'niti-hw[rtl]'")

from niti_hw.rtl.axi_lite import RESP_OKAY, RESP_SLVERR, AxiLiteRegisters  # noqa: E402
from niti_hw.rtl.control import ControlRegisters  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "sim"))
from inprocess import AxiLiteInProcess, run_testbench  # noqa: E402

ORDERS = AxiLiteInProcess.ORDERS

# Fields across byte boundaries, a constant beside RW fields, strobes beside a read-only field, and
# a register at the window's last word.
TOY = RegisterMap((
    Register("A", 0x0, (Field("lo", 0, 3, "RW", 5), Field("mid", 5, 9, "RW", 0x1AB),
                        Field("k", 20, 4, "CONST", 9))),
    Register("B", 0x4, (Field("ro", 0, 16, "RO"), Field("flag", 16, 2, "W1C"),
                        Field("go", 24, 8, "W1P"))),
    Register("C", 0xFFC, (Field("all", 0, 32, "RW", 0xDEADBEEF),)),
))


def byte_mask(strb: int) -> int:
    return sum(0xFF << 8 * n for n in range(4) if strb >> n & 1)


def rw_after(reg: Register, old: int, data: int, strb: int) -> int:
    """The word of `reg` after a write: RW fields take the strobed bytes, the rest is as before."""
    mask = byte_mask(strb) & sum(f.mask for f in reg.fields if f.access == "RW")
    return (old & ~mask) | (data & mask)


def test_toy_map_writes_every_order_random_strobes_and_backpressure():
    dut = AxiLiteRegisters(TOY)
    rng = random.Random(1)
    counts = {"writes": 0, "reads": 0, "orders": set()}

    async def bench(ctx):
        axi = AxiLiteInProcess(ctx, dut, "toy registers")
        model = {reg.name: reg.reset for reg in TOY.registers}
        for reg in TOY.registers:  # reset values
            assert await axi.read(reg.offset) == (reg.reset, RESP_OKAY), reg.name
        for n in range(120):
            reg = TOY[rng.choice(["A", "C"])]
            data, strb = rng.getrandbits(32), rng.getrandbits(4)
            order = ORDERS[n % 3]
            resp = await axi.write(reg.offset + rng.randrange(4), data, strb, order,
                                   gap=rng.randrange(1, 4), stall=rng.randrange(3))
            assert resp == RESP_OKAY and axi.latency == AXI_LITE_LATENCY
            model[reg.name] = rw_after(reg, model[reg.name], data, strb)
            for f in reg.fields:  # the field ports hold the new value as B arrives
                if f.access == "RW":
                    assert ctx.get(getattr(dut, port_name(reg, f))) == \
                        (model[reg.name] & f.mask) >> f.lsb, (reg.name, f.name, order)
            got = await axi.read(rng.choice([reg.offset, reg.offset + 3]), stall=rng.randrange(3))
            assert got == (model[reg.name], RESP_OKAY), (n, reg.name, hex(data), bin(strb), order)
            assert axi.latency == AXI_LITE_LATENCY
            counts["writes"] += 1
            counts["reads"] += 1
            counts["orders"].add(order)
        assert axi.held > 50  # responses were held under backpressure

    run_testbench(dut, bench)
    assert counts == {"writes": 120, "reads": 120, "orders": set(ORDERS)}


def test_aw_and_w_wait_for_each_other():
    """With only one of AW and W in, nothing is written and no B comes (checked for `gap` cycles
    in AxiLiteInProcess.write); the late one completes the write."""
    dut = AxiLiteRegisters(TOY)

    async def bench(ctx):
        axi = AxiLiteInProcess(ctx, dut, "toy registers")
        for order, value in (("aw_first", 0x12345678), ("w_first", 0x9ABCDEF0)):
            assert await axi.write(0xFFC, value, 0xF, order, gap=10) == RESP_OKAY
            assert ctx.get(dut.c_all) == value
        assert await axi.read(0xFFC) == (0x9ABCDEF0, RESP_OKAY)

    run_testbench(dut, bench)


def test_reads_and_writes_proceed_side_by_side():
    """A writer and a reader on the same register at once: each channel pair keeps its own
    access, every read sees the reset value or a value already written, in order."""
    dut = AxiLiteRegisters(TOY)
    written = [0x1000 + 17 * n for n in range(40)]
    seen, done = [], []

    async def writer(ctx):
        axi = AxiLiteInProcess(ctx, dut, "toy registers (writer)")
        for n, value in enumerate(written):
            resp = await axi.write(0xFFC, value, 0xF, ORDERS[n % 3], stall=n % 2)
            assert resp == RESP_OKAY and axi.latency == AXI_LITE_LATENCY
        done.append(True)

    async def reader(ctx):
        axi = AxiLiteInProcess(ctx, dut, "toy registers (reader)")
        while not done:
            value, resp = await axi.read(0xFFC, stall=len(seen) % 3)
            assert resp == RESP_OKAY and axi.latency == AXI_LITE_LATENCY
            seen.append(value)

    run_testbench(dut, reader, beside=[writer])
    order = [TOY["C"].reset] + written
    assert all(value in order for value in seen)
    positions = [order.index(value) for value in seen]
    assert positions == sorted(positions) and len(set(positions)) > 10


def test_read_only_fields_ignore_writes_and_unmapped_words_answer_slverr():
    dut = AxiLiteRegisters(TOY)

    async def bench(ctx):
        axi = AxiLiteInProcess(ctx, dut, "toy registers")
        ctx.set(dut.b_ro, 0xBEEF)
        ctx.set(dut.b_flag, 2)
        b = TOY["B"]
        assert await axi.read(b.offset) == (0xBEEF | 2 << 16, RESP_OKAY)
        assert await axi.write(b.offset, 0x0000FFFF, 0xF) == RESP_OKAY  # RO bits: no effect
        assert await axi.read(b.offset) == (0xBEEF | 2 << 16, RESP_OKAY)
        a = TOY["A"]
        assert await axi.write(a.offset, 0xFFFFFFFF, 0xF) == RESP_OKAY  # k is a constant
        assert await axi.read(a.offset) == ((9 << 20) | (0x1FF << 5) | 7, RESP_OKAY)
        for addr in (0x8, 0xC, 0x100, 0xFF8, 0xFFB):
            for order in ORDERS:
                assert await axi.write(addr, 0xFFFFFFFF, 0xF, order, stall=2) == RESP_SLVERR, addr
            assert await axi.read(addr, stall=1) == (0, RESP_SLVERR), addr
        assert await axi.read(0xFFC) == (0xDEADBEEF, RESP_OKAY)  # nothing changed
        assert await axi.read(a.offset) == ((9 << 20) | (0x1FF << 5) | 7, RESP_OKAY)

    run_testbench(dut, bench)


def test_w1p_and_w1c_strobe_one_cycle_for_the_strobed_bytes():
    dut = AxiLiteRegisters(TOY)
    b = TOY["B"]

    async def bench(ctx):
        axi = AxiLiteInProcess(ctx, dut, "toy registers")
        assert await axi.write(b.offset, 0xA5 << 24 | 0b11 << 16, 0b1100) == RESP_OKAY
        assert await axi.write(b.offset, 0x5A << 24 | 0b01 << 16, 0b0111) == RESP_OKAY  # no go
        assert await axi.write(b.offset, 0x3C << 24 | 0b10 << 16, 0b1000) == RESP_OKAY  # no flag
        assert await axi.read(b.offset) == (0, RESP_OKAY)  # W1P reads 0

    seen = run_testbench(dut, bench, watch=(dut.b_go, dut.b_flag_clear))
    pulses = [(n, values) for n, values in enumerate(seen) if any(values)]
    assert [values for _, values in pulses] == [(0xA5, 0b11), (0, 0b01), (0x3C, 0)]
    assert len({n for n, _ in pulses}) == 3  # three separate one-cycle strobes


def test_control_registers_reset_values_and_hardware_parameters():
    dut = ControlRegisters(DEFAULT)
    regmap = register_map(DEFAULT)

    async def bench(ctx):
        axi = AxiLiteInProcess(ctx, dut, "control registers")
        for reg in regmap.registers:
            assert await axi.read(reg.offset) == (reg.reset, RESP_OKAY), reg.name
        hw = regmap["HW_ARRAY"]
        word, _ = await axi.read(hw.offset)
        rows, cols = hw.field("rows"), hw.field("cols")
        assert ((word & rows.mask) >> rows.lsb, (word & cols.mask) >> cols.lsb) == \
            (DEFAULT.rows, DEFAULT.cols)

    run_testbench(dut, bench)


def cfg_values(rng) -> dict:
    """Random values of every cfg field."""
    return {name: rng.getrandbits(bits) for name, bits in TENSOR_CFG_FIELDS.items()}


def test_control_registers_run_start_done_cycles_and_cfg_beat():
    dut = ControlRegisters(DEFAULT)
    regmap = register_map(DEFAULT)
    rng = random.Random(7)
    status, cycles, ctrl = regmap["STATUS"], regmap["CYCLES"], regmap["CTRL"]
    busy_bit, done_bit, error_bit = (1 << status.field(f).lsb for f in ("busy", "done", "error"))
    start_bit, soft_bit = (1 << ctrl.field(f).lsb for f in ("start", "soft_reset"))
    runs = []

    async def bench(ctx):
        axi = AxiLiteInProcess(ctx, dut, "control registers")
        for run in range(6):
            values = cfg_values(rng)
            for name, fields in CFG_REGISTERS:
                reg = regmap[name]
                word = sum(values[f] << reg.field(f).lsb for f in fields)
                assert await axi.write(reg.offset, word) == RESP_OKAY
                assert await axi.read(reg.offset) == (word, RESP_OKAY)
            ctx.set(dut.cfg.ready, 0)
            assert await axi.write(ctrl.offset, start_bit) == RESP_OKAY
            # The strobe came with B (the watcher checks it); busy and the cfg beat a cycle later,
            # as B is taken.
            assert ctx.get(dut.busy) and ctx.get(dut.cfg.valid) and not ctx.get(dut.start)
            assert {name: ctx.get(dut.cfg.payload[name]) for name in TENSOR_CFG_FIELDS} == values
            for _ in range(rng.randrange(0, 5)):  # the beat holds until taken
                await ctx.tick()
                assert ctx.get(dut.cfg.valid)
            ctx.set(dut.cfg.ready, 1)
            await ctx.tick()
            ctx.set(dut.cfg.ready, 0)
            assert not ctx.get(dut.cfg.valid)
            assert await axi.write(ctrl.offset, start_bit) == RESP_OKAY  # ignored: busy
            await ctx.tick()
            assert not ctx.get(dut.cfg.valid)
            ctx.set(dut.error, run % 2)
            word, _ = await axi.read(status.offset)
            assert word & busy_bit and not word & done_bit
            for _ in range(rng.randrange(0, 30)):
                await ctx.tick()
            ctx.set(dut.done, 1)
            await ctx.tick()
            ctx.set(dut.done, 0)
            ctx.set(dut.error, 0)
            assert not ctx.get(dut.busy)
            word, _ = await axi.read(status.offset)
            assert word == done_bit | (error_bit if run % 2 else 0)
            busy_cycles, resp = await axi.read(cycles.offset)
            assert resp == RESP_OKAY
            runs.append(busy_cycles)
            assert await axi.write(status.offset, done_bit | error_bit) == RESP_OKAY  # W1C
            await ctx.tick()
            assert await axi.read(status.offset) == (0, RESP_OKAY)
        # Soft reset in the middle of a run: busy, CYCLES and the pending beat go.
        assert await axi.write(ctrl.offset, start_bit) == RESP_OKAY
        assert ctx.get(dut.busy) and ctx.get(dut.cfg.valid)
        assert await axi.write(ctrl.offset, soft_bit | start_bit) == RESP_OKAY
        assert not ctx.get(dut.busy) and not ctx.get(dut.cfg.valid)
        assert await axi.read(status.offset) == (0, RESP_OKAY)
        assert await axi.read(cycles.offset) == (0, RESP_OKAY)
        assert await axi.write(ctrl.offset, soft_bit | start_bit) == RESP_OKAY  # idle: no start
        assert not ctx.get(dut.busy) and not ctx.get(dut.cfg.valid)

    seen = run_testbench(dut, bench, watch=(dut.start, dut.busy, dut.soft_reset))
    busy = "".join(str(b) for _, b, _ in seen)
    soft = [n for n, (_, _, pulse) in enumerate(seen) if pulse]
    assert len(soft) == 2 and busy[soft[0]:soft[0] + 2] == "10"  # busy ends after the pulse
    lengths = [len(stretch) for stretch in busy.split("0") if stretch]
    assert lengths[:6] == runs and min(runs) < max(runs)  # CYCLES: exactly the busy cycles
    starts = [n for n, (start, _, _) in enumerate(seen) if start]
    assert len(starts) == 7  # one per run and the one before the soft reset, never while busy
    assert all(busy[n:n + 2] == "01" for n in starts)  # busy the cycle after each start
    assert CONTROL_START_LATENCY == AXI_LITE_LATENCY + 1
