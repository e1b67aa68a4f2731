"""BITWIDTH and ROUND: an int32 tensor streamed from its bank through the bitwidth detector, or
through a shift-and-round unit into int8 rows, as the reference machine's `_bitwidth` and
`_round` (golden `bitwidth`, `narrowing_shift`, `weight_gradient`, `RoundingPolicy.round`)."""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from niti_hw.params import HardwareParams
from niti_hw.program.isa import KEEP_M_U, Kind, Opcode
from niti_hw.rtl.bitwidth_detector import BitwidthDetector
from niti_hw.rtl.engine import Engine
from niti_hw.rtl.instruction import MODE_BITS, config_layout
from niti_hw.rtl.layouts import BITWIDTH, SHIFT
from niti_hw.rtl.lfsr_bank import lfsr_port_signature
from niti_hw.rtl.row_stream import RowReads, RowWrites, TensorRows, widen
from niti_hw.rtl.shift_round import ShiftRound


def rounding_mode(config, op):
    """The mode code a ROUND uses: its kind's, but a gradient's (keep = KEEP_M_U) always the
    gradient kind's, as golden `weight_gradient` rounds."""
    return Mux(op.keep == KEEP_M_U, config.modes[Kind.GRADIENT], config.modes[op.kind])


class NarrowEngine(Engine):
    """BITWIDTH: the `m` values at `a` through a `BitwidthDetector` (lanes past `m` read as 0);
    `b` holds B at `done`, for the sequencer's B register.

    ROUND: the values at `a` replayed in order through the `ShiftRound` of the mode
    `rounding_mode` picks, `lanes` per beat, the last beat's `keep` cropped to `m`, into int8 rows
    at `dst`. The shift: k = max(0, `b_reg` - keep) (`b_reg`: the B register), given on `k` for
    the exponent; with keep = `KEEP_M_U`, golden `weight_gradient`'s rule on B of this tensor,
    found by a detector pass first: k = B - m_u, 0 when B <= m_u (saturation only; zeros when
    B = 0). One rounder for every mode (`ShiftRound`'s `runtime_mode`); stochastic rounding draws
    from the core's LFSR lanes (`lfsr`, an `LfsrBank` shared with the loss engine), carried from
    tensor to tensor as golden's lanes are: element j of a tensor draws from lane j % lfsr_lanes.

    Throughput: one row per cycle. Cycles from `start` to `done`: `niti_hw.perf.timing`'s
    `narrow_cycles`.
    """

    def __init__(self, params: HardwareParams):
        super().__init__(params, b_reg=In(BITWIDTH), config=In(config_layout()),
                         b=Out(BITWIDTH), k=Out(SHIFT), lfsr=Out(lfsr_port_signature(params)))
        self.detector = BitwidthDetector(params)
        self.rounder = ShiftRound(params, shared_lfsr=True, runtime_mode=True)

    def elaborate(self, platform):
        p, op = self.params, self.op
        m = Module()
        m.submodules.detector = detector = self.detector
        m.submodules.rounder = rounder = self.rounder
        wiring.connect(m, wiring.flipped(self.lfsr), rounder.lfsr)
        rows = TensorRows(p.lanes)
        reads = RowReads(m, [self.rd[0]])
        values = self.rd[0].data
        kept = rows.mask(reads.last)
        detecting = Signal()  # a detector pass runs (registers: no state decode feeds the units)
        rounding = Signal()
        mode = Signal(MODE_BITS)

        m.d.comb += [detector.o.ready.eq(1), detector.i.valid.eq(reads.valid & detecting),
                     detector.i.p.last.eq(reads.last)]
        m.d.comb += [detector.i.p.data[n].eq(Mux(kept[n], values[n], 0)) for n in range(p.lanes)]
        m.d.comb += [
            rounder.mode_code.eq(mode), rounder.i.valid.eq(reads.valid & rounding),
            rounder.i.p.data.eq(values), rounder.i.p.k.eq(self.k), rounder.i.p.keep.eq(kept),
            rounder.i.p.last.eq(reads.last), rounder.o.ready.eq(1),
        ]
        result = widen(m, rounder.o.p.data, p, "rounded")
        writes = RowWrites(m, rows, self.wr[0], rounder.o.valid, rounder.o.p.last, result,
                           "rounded")

        place = [(op.a_bank, op.a_base)]
        m.d.sync += self.done.eq(0)
        with m.If(self.start):
            m.d.sync += [mode.eq(rounding_mode(self.config, op)),
                         self.k.eq(Mux(self.b_reg > op.keep, self.b_reg - op.keep, 0))]
            m.d.sync += rows.start(op.m) + reads.start(rows, op.m, place)
            m.d.sync += writes.start(op.dst_bank, op.dst_base, p.lanes)
            with m.If((op.opcode == Opcode.BITWIDTH) | (op.keep == KEEP_M_U)):
                m.d.sync += detecting.eq(1)
            with m.Else():
                m.d.sync += rounding.eq(1)
        with m.If(detector.o.valid):
            b, m_u = detector.o.payload, self.config.m_u
            m.d.sync += [self.b.eq(b), detecting.eq(0)]
            with m.If(op.opcode == Opcode.ROUND):  # a gradient's pass: now its rounding
                m.d.sync += [self.k.eq(Mux(b > m_u, b - m_u, 0)), rounding.eq(1)]
                m.d.sync += reads.start(rows, op.m, place)
            with m.Else():
                m.d.sync += self.done.eq(1)
        with m.If(writes.done):
            m.d.sync += [rounding.eq(0), self.done.eq(1)]
        return m
