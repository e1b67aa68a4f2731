"""UPDATE: weights updated in place by their int8 gradients through `WeightUpdate`, as the
reference machine's `_update` (golden `IntegerWeights.apply`, and `as_int8` for wide weights)."""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal

from niti_hw.golden import INT8_MAX
from niti_hw.params import HardwareParams
from niti_hw.perf.timing import WIDE_UPDATE_GAP
from niti_hw.rtl.engine import Engine
from niti_hw.rtl.row_stream import RowReads, RowWrites, TensorRows, widen
from niti_hw.rtl.update_unit import WeightUpdate

INT8_BITS = INT8_MAX.bit_length() + 1


class UpdateEngine(Engine):
    """UPDATE of `weight_bits`-wide weights (the core's; an UPDATE's `n` must say the same): the
    `m` gradients at `a` (an int8 bank) and the weights at `dst` -> W = sat(W - g) at
    +-(2**(weight_bits-1) - 1), written back to `dst`. Each row is read before it is written
    (reads run `UPDATE_LATENCY` + 2 rows ahead), so the update is in place.

    Wider than 8 bits, a second pass reads the updated weights back through the unit with g = 0
    and writes their int8 copies R(W, weight_bits - 8, nearest) to `aux` (the GEMMs' operand):
    the copies usually share the weights' bank, whose one write port takes a row per cycle. It
    starts `WIDE_UPDATE_GAP` cycles after the first pass's last write, so it reads that row as
    written.

    Throughput: one row per cycle. Cycles from `start` to `done`: `niti_hw.perf.timing`'s
    `update_engine_cycles`.
    """

    def __init__(self, params: HardwareParams, weight_bits: int = INT8_BITS):
        super().__init__(params)
        self.weight_bits = weight_bits
        self.unit = WeightUpdate(params, weight_bits)

    def elaborate(self, platform):
        p, op, bits = self.params, self.op, self.weight_bits
        m = Module()
        m.submodules.unit = unit = self.unit
        rows = TensorRows(p.lanes)
        reads = RowReads(m, list(self.rd))
        gradients, weights = self.rd[0].data, self.rd[1].data
        copying = Signal()  # the second pass (a register: the unit's inputs decode no state)
        m.d.comb += [unit.i.valid.eq(reads.valid), unit.i.p.last.eq(reads.last),
                     unit.o.ready.eq(1)]
        for n in range(p.lanes):
            m.d.comb += [unit.i.p.g[n].eq(Mux(copying, 0, gradients[n][:INT8_BITS])),
                         unit.i.p.w[n].eq(weights[n][:bits])]
        result = Mux(copying, widen(m, unit.o.p.q, p, "copied").as_value(),
                     widen(m, unit.o.p.w, p, "updated").as_value())
        writes = RowWrites(m, rows, self.wr[0], unit.o.valid, unit.o.p.last,
                           self.wr[0].data.shape()(result), "updated")

        gap = Signal(WIDE_UPDATE_GAP)  # the cycles between the passes
        m.d.sync += [self.done.eq(writes.done & (copying | (bits == INT8_BITS))),
                     gap.eq(Cat(writes.done & ~copying, gap[:-1]))]
        with m.If(self.start):
            m.d.sync += rows.start(op.m) + [copying.eq(0)]
            m.d.sync += reads.start(rows, op.m, [(op.a_bank, op.a_base),
                                                 (op.dst_bank, op.dst_base)])
            m.d.sync += writes.start(op.dst_bank, op.dst_base, p.lanes)
        if bits > INT8_BITS:
            with m.If(gap[-1]):
                m.d.sync += copying.eq(1)
                m.d.sync += reads.start(rows, op.m, [(op.dst_bank, op.dst_base)] * 2)
                m.d.sync += writes.start(op.aux_bank, op.aux_base, p.lanes)
        return m
