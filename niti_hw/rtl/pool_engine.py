"""POOL: max-pooling of an NHWC int8 tensor by the pool geometry, as the reference machine's
`_pool` (golden `MaxPool2d.pool`): each pooled word's window walked (`WindowWalk`) a word a
cycle through a `MaxPool` unit."""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib.wiring import In

from niti_hw.params import HardwareParams
from niti_hw.rtl.banks import word_bits
from niti_hw.rtl.engine import Engine
from niti_hw.rtl.instruction import geometry_layout
from niti_hw.rtl.max_pool import MAX_KERNEL, MaxPool
from niti_hw.rtl.walks import WindowWalk
from niti_hw.rtl.word_stream import WordReads, WordWrites


class PoolEngine(Engine):
    """POOL: the input at `a` (an int8 bank; `pool`'s input shape) -> each window's largest value
    to `dst` and its offset kh * K + kw (the first largest wins) to `aux`, in the pooled NHWC
    order, `dst` and `aux` in two banks (the sequencer refuses one bank, a kernel above
    `MAX_KERNEL`, padding and non-square kernels).

    One `MaxPool` per kernel size on a single lane (the walk reads one word a cycle), the held
    geometry's picked. Throughput: one input word per cycle. Cycles from `start` to `done`:
    `niti_hw.perf.timing`'s `pool_engine_cycles`.
    """

    def __init__(self, params: HardwareParams):
        super().__init__(params, pool=In(geometry_layout()))
        self.walk = WindowWalk(word_bits(params))
        word = params.replace(lanes=1, lfsr_lanes=1)
        self.units = {kernel: MaxPool(word, kernel) for kernel in range(1, MAX_KERNEL + 1)}

    def elaborate(self, platform):
        p, op = self.params, self.op
        m = Module()
        m.submodules.walk = walk = self.walk
        m.d.comb += [walk.start.eq(self.start), walk.geometry.eq(self.pool)]
        reads = WordReads(m, [self.rd[0]], walk.o, p.lanes)
        element, (value,) = reads.arrived, reads.words
        kernel = Signal.like(self.pool.kernel_h)
        valid, last, best, winner = 0, 0, 0, 0
        for size, unit in self.units.items():
            m.submodules[f"max_pool{size}"] = unit
            chosen = kernel == size
            m.d.comb += [unit.i.valid.eq(element.valid & chosen), unit.i.p.data[0].eq(value[:8]),
                         unit.i.p.last.eq(element.final), unit.o.ready.eq(1)]
            valid = valid | unit.o.valid
            last = Mux(chosen, unit.o.p.last, last)
            best = Mux(chosen, unit.o.p.data[0], best)
            winner = Mux(chosen, unit.o.p.index[0], winner)
        largest = Signal.like(self.units[1].o.p.data[0], name="largest")
        m.d.comb += largest.eq(best)
        results = WordWrites(m, self.wr[0], valid, largest, p.lanes, "best")
        winners = WordWrites(m, self.wr[1], valid, winner, p.lanes, "winner")

        m.d.sync += self.done.eq(valid & last)
        with m.If(self.start):
            m.d.sync += [kernel.eq(self.pool.kernel_h)] + reads.start([(op.a_bank, op.a_base)])
            m.d.sync += results.start(op.dst_bank, op.dst_base)
            m.d.sync += winners.start(op.aux_bank, op.aux_base)
        return m
