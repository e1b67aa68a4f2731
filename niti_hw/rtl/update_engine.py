"""UPDATE: weights updated in place by their int8 gradients through `WeightUpdate`, as the
reference machine's `_update` (golden `IntegerWeights.apply`) for the core's 8-bit weights."""

from __future__ import annotations

from amaranth.hdl import Module

from niti_hw.params import HardwareParams
from niti_hw.program.isa import Bank
from niti_hw.rtl.banks import BANK_VALUE_BITS
from niti_hw.rtl.engine import Engine
from niti_hw.rtl.row_stream import RowReads, RowWrites, TensorRows, widen
from niti_hw.rtl.update_unit import WeightUpdate

WEIGHT_BITS = BANK_VALUE_BITS[Bank.WEIGHT]
"""Bits of the weights the core stores: an UPDATE's `n` must say the same (the sequencer refuses
another; wider weights and their int8 copies are for a later core)."""


class UpdateEngine(Engine):
    """UPDATE: the `m` gradients at `a` (an int8 bank) and the weights at `dst` (an int8 bank)
    -> W = sat(W - g) at +-127, written back to `dst`. Each row is read before it is written
    (reads run `UPDATE_LATENCY` + 2 rows ahead), so the update is in place.

    Throughput: one row per cycle. Cycles from `start` to `done`: `niti_hw.perf.timing`'s
    `update_engine_cycles`.
    """

    def __init__(self, params: HardwareParams):
        super().__init__(params)
        self.unit = WeightUpdate(params, WEIGHT_BITS)

    def elaborate(self, platform):
        p, op = self.params, self.op
        m = Module()
        m.submodules.unit = unit = self.unit
        rows = TensorRows(p.lanes)
        reads = RowReads(m, list(self.rd))
        gradients, weights = self.rd[0].data, self.rd[1].data
        m.d.comb += [unit.i.valid.eq(reads.valid), unit.i.p.last.eq(reads.last),
                     unit.o.ready.eq(1)]
        for n in range(p.lanes):
            m.d.comb += [unit.i.p.g[n].eq(gradients[n][:8]), unit.i.p.w[n].eq(weights[n][:8])]
        writes = RowWrites(m, rows, self.wr[0], unit.o.valid, unit.o.p.last,
                           widen(m, unit.o.p.w, p, "updated"), "updated")

        m.d.sync += self.done.eq(writes.done)
        with m.If(self.start):
            m.d.sync += rows.start(op.m)
            m.d.sync += reads.start(rows, op.m, [(op.a_bank, op.a_base),
                                                 (op.dst_bank, op.dst_base)])
            m.d.sync += writes.start(op.dst_bank, op.dst_base, p.lanes)
        return m
