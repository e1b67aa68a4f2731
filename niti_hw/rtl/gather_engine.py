"""COL2IM and POOL_BACKWARD: the transposed walks, each input word gathered from the windows
that cover it (`GatherWalk`), as the reference machine's `_col2im` (golden `col2im`) and
`_pool_backward` (golden `MaxPool2d.route`). A gather writes each result word once, after its
last term: no word is read back and added to, so overlapping windows need no read-modify-write.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib.wiring import In

from niti_hw.params import HardwareParams
from niti_hw.perf.timing import GATHER_SUM_LATENCY
from niti_hw.program.isa import Opcode
from niti_hw.rtl.banks import word_bits
from niti_hw.rtl.engine import Engine
from niti_hw.rtl.instruction import geometry_layout
from niti_hw.rtl.layouts import INT32
from niti_hw.rtl.saturate import saturate
from niti_hw.rtl.walks import GatherWalk
from niti_hw.rtl.word_stream import WordReads, WordWrites

if GATHER_SUM_LATENCY != 1:
    raise RuntimeError("rtl/gather_engine.py adds into one sum register: perf.timing's "
                       "GATHER_SUM_LATENCY must say 1")


class GatherEngine(Engine):
    """COL2IM (`conv` geometry): the int32 im2col columns at `a` (N*OH*OW x KH*KW*C, the ACC
    bank) -> the NHWC input-shaped int32 sum of every column word that lands on each position,
    modulo 2**32 as golden's int32 adds, to `dst` (the ACC bank).

    POOL_BACKWARD (`pool` geometry): the pooled errors at `a` (an int8 bank) and the winners at
    `b` -> each input position's sum of the errors of the windows whose winner is that position,
    saturated to +-127 (golden `route`: one window or overlapping ones alike), to `dst`.

    Throughput: one candidate word per cycle (`gather_walk`). Cycles from `start` to `done`:
    `niti_hw.perf.timing`'s `gather_engine_cycles`.
    """

    def __init__(self, params: HardwareParams):
        super().__init__(params, conv=In(geometry_layout()), pool=In(geometry_layout()))
        self.walk = GatherWalk(word_bits(params))

    def elaborate(self, platform):
        p, op = self.params, self.op
        m = Module()
        m.submodules.walk = walk = self.walk
        columns = op.opcode == Opcode.COL2IM  # held from start to done
        # The walk's geometry from a register: `op` is decoded two cycles before `start`, and the
        # opcode's compare and the pick stay out of the walk's multipliers' cycle.
        geometry = Signal.like(self.conv, name="geometry")
        m.d.sync += geometry.eq(Mux(columns, self.conv.as_value(), self.pool.as_value()))
        m.d.comb += [walk.start.eq(self.start), walk.columns.eq(columns),
                     walk.geometry.eq(geometry)]
        routing = Signal()  # POOL_BACKWARD: a term counts where the winner is this word
        reads = WordReads(m, list(self.rd), walk.o, p.lanes, [1, ~columns])
        element, (value, winner) = reads.arrived, reads.words
        taken = element.inside & (~routing | (winner == element.offset))
        total = Signal(INT32, name="total")
        summed = Signal(name="summed")
        final = Signal(name="summed_final")
        with m.If(element.valid):
            m.d.sync += total.eq(Mux(element.first, 0, total) + Mux(taken, value, 0))
        m.d.sync += [summed.eq(element.valid & element.last),
                     final.eq(element.valid & element.final)]
        result = Signal(INT32, name="result")
        m.d.comb += result.eq(Mux(routing, saturate(total, 8), total))
        writes = WordWrites(m, self.wr[0], summed, result, p.lanes, "gathered")

        m.d.sync += self.done.eq(final)
        with m.If(self.start):
            m.d.sync += [routing.eq(~columns)]
            m.d.sync += reads.start([(op.a_bank, op.a_base), (op.b_bank, op.b_base)])
            m.d.sync += writes.start(op.dst_bank, op.dst_base)
        return m
