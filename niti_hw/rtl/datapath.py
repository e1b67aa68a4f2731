"""Forward step of Algorithm 1 on one output tile: GEMM -> B(acc) -> k = max(0, B - 7) -> R(acc, k)."""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from niti_hw.golden import INT8_MAX
from niti_hw.params import HardwareParams
from niti_hw.perf.timing import beats_per_tile
from niti_hw.rtl.bitwidth_detector import BitwidthDetector
from niti_hw.rtl.layouts import INT32, datapath_out_layout, operand_layout
from niti_hw.rtl.shift_round import ShiftRound
from niti_hw.rtl.systolic_array import SystolicArray

INT8_BITS = INT8_MAX.bit_length()  # k = max(0, B - 7) keeps 7 magnitude bits


class Datapath(wiring.Component):
    """SystolicArray -> BitwidthDetector -> ShiftRound, the tensor being one rows x cols tile.

    Input `i`: the SystolicArray operand protocol. Output `o`: the tile's rounded int8 values,
    `lanes` per beat in row-major order (rows*cols/lanes beats, `last` on the final one) and the shift
    `k` applied (the tile exponent grows by k). Rounding mode is `params.round_mode`.

    A tile is buffered (rows*cols int32) while the detector computes B, then replayed through the
    rounding unit. The buffer has two banks, so the array drains the next tile into one bank while
    the other is replayed; it is held (backpressure) only when both banks are taken. Latency: first
    rounded beat `niti_hw.perf.timing.first_out_latency(params)` cycles after the tile's last operand beat from idle.

    Throughput (back-to-back tiles, no gaps, no backpressure; measured by sim/bench_datapath.py
    `throughput`): `niti_hw.perf.timing.tile_pair_cycles`. The banks overlap (K = 64 on 8x8, lanes
    8: 64 cycles per tile, not K + D); the array stalls while the serialiser takes cols/lanes cycles
    per drained row (`drain_stall`), and a bank turns round in `BANK_TURNAROUND` cycles.
    """

    def __init__(self, params: HardwareParams):
        self.params = params
        super().__init__({
            "i": In(stream.Signature(operand_layout(params))),
            "o": Out(stream.Signature(datapath_out_layout(params))),
        })

    def elaborate(self, platform):
        p = self.params
        L, per_row, depth = p.lanes, p.cols // p.lanes, beats_per_tile(p)
        m = Module()
        m.submodules.array = array = SystolicArray(p)
        m.submodules.detector = detector = BitwidthDetector(p)
        m.submodules.rounder = rounder = ShiftRound(p)
        m.submodules.buffer = buf = memory.Memory(
            shape=data.ArrayLayout(INT32, L), depth=2 * depth, init=[])
        wr = buf.write_port()
        rd = buf.read_port(domain="comb")
        wiring.connect(m, wiring.flipped(self.i), array.i)

        # Banks: `taken[b]` from a tile's last beat written until its replay ends; `ready[b]` once
        # its B (and so k) is known. Tiles take banks in turn: written in wbank, replayed from rbank.
        taken, ready = Signal(2), Signal(2)
        wbank, rbank, dbank = Signal(), Signal(), Signal()
        k_bank = [Signal.like(rounder.i.p.k, name=f"k_bank{b}") for b in range(2)]
        fill = Signal()  # the write bank can take the tile
        m.d.comb += fill.eq(~taken.bit_select(wbank, 1))

        # Serialiser: one array row -> per_row beats of L lanes, lowest columns first.
        row = Signal(data.ArrayLayout(INT32, p.cols))
        row_last = Signal()
        left = Signal(range(per_row + 1))
        beat_go = Signal()
        m.d.comb += beat_go.eq(fill & (left != 0))
        m.d.comb += array.o.ready.eq(fill & ((left == 0) | ((left == 1) & beat_go)))
        with m.If(array.o.valid & array.o.ready):
            m.d.sync += [row.eq(array.o.p.c), row_last.eq(array.o.p.last), left.eq(per_row)]
        with m.Elif(beat_go):
            m.d.sync += [row.eq(row.as_value() >> (32 * L)), left.eq(left - 1)]

        wr_addr = Signal(range(depth))
        tile_end = Signal()
        m.d.comb += [
            tile_end.eq(beat_go & row_last & (left == 1)),
            wr.addr.eq(wr_addr + Mux(wbank, depth, 0)),
            wr.en.eq(beat_go),
            detector.i.valid.eq(beat_go),
            detector.o.ready.eq(1),
        ]
        for lane in range(L):
            m.d.comb += [wr.data[lane].eq(row[lane]), detector.i.p.data[lane].eq(row[lane])]
        m.d.comb += detector.i.p.last.eq(tile_end)
        with m.If(beat_go):
            m.d.sync += wr_addr.eq(Mux(tile_end, 0, wr_addr + 1))
        with m.If(tile_end):
            m.d.sync += wbank.eq(~wbank)

        # B arrives in tile order: k = max(0, B - 7) for bank dbank, which may then be replayed.
        set_ready = Signal(2)
        with m.If(detector.o.valid):
            m.d.sync += dbank.eq(~dbank)
            for b in range(2):
                with m.If(dbank == b):
                    m.d.sync += k_bank[b].eq(Mux(detector.o.payload > INT8_BITS,
                                                 detector.o.payload - INT8_BITS, 0))
            m.d.comb += set_ready.eq(Mux(dbank, 0b10, 0b01))

        rd_addr = Signal(range(depth))
        final = Signal()
        done = Signal()
        m.d.comb += [
            final.eq(rd_addr == depth - 1),
            rd.addr.eq(rd_addr + Mux(rbank, depth, 0)),
            rounder.i.valid.eq(ready.bit_select(rbank, 1)),
            rounder.i.p.data.eq(rd.data),
            rounder.i.p.k.eq(Mux(rbank, k_bank[1], k_bank[0])),
            rounder.i.p.keep.eq(-1),
            rounder.i.p.last.eq(final),
            done.eq(rounder.i.valid & rounder.i.ready & final),
        ]
        with m.If(rounder.i.valid & rounder.i.ready):
            m.d.sync += rd_addr.eq(Mux(final, 0, rd_addr + 1))
        with m.If(done):
            m.d.sync += rbank.eq(~rbank)
        cleared = Mux(done, Mux(rbank, 0b10, 0b01), 0)
        written = Mux(tile_end, Mux(wbank, 0b10, 0b01), 0)
        m.d.sync += [ready.eq((ready | set_ready) & ~cleared), taken.eq((taken | written) & ~cleared)]

        # Output: rounded lanes plus the k they were rounded with (it travels through the rounder,
        # as the next tile's B may arrive while this tile is still in the rounding pipeline).
        m.d.comb += [
            self.o.valid.eq(rounder.o.valid),
            rounder.o.ready.eq(self.o.ready),
            self.o.p.data.eq(rounder.o.p.data),
            self.o.p.last.eq(rounder.o.p.last),
            self.o.p.k.eq(rounder.o.p.k),
        ]
        return m
