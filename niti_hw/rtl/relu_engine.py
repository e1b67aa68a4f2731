"""RELU and RELU_BACKWARD: int8 rows streamed through `Relu` or `ReluBackward`, as the reference
machine's `_relu` and `_relu_backward` (golden `ReLU.mask` and `ReLU.apply`)."""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal

from niti_hw.params import HardwareParams
from niti_hw.program.isa import Opcode
from niti_hw.rtl.engine import Engine
from niti_hw.rtl.relu import Relu, ReluBackward
from niti_hw.rtl.row_stream import RowReads, RowWrites, TensorRows, widen


class ReluEngine(Engine):
    """RELU: the `m` int8 values at `a` -> x where x > 0, else 0, to `dst`, and the mask (1 where
    x > 0, else 0) to `aux`, both rows written in one cycle (`dst` and `aux` in two banks: the
    sequencer refuses one).

    RELU_BACKWARD: errors at `a` and the mask at `b` (a value is set where it is not 0) -> the
    error where the mask is set, else 0, to `dst`.

    `a` must be an int8 bank (the sequencer refuses the int32 one); the mask may lie in any.
    Throughput: one row per cycle. Cycles from `start` to `done`: `niti_hw.perf.timing`'s
    `relu_engine_cycles`.
    """

    def __init__(self, params: HardwareParams):
        super().__init__(params)
        self.forward = Relu(params)
        self.backward = ReluBackward(params)

    def elaborate(self, platform):
        p, op = self.params, self.op
        m = Module()
        m.submodules.forward = forward = self.forward
        m.submodules.backward = backward = self.backward
        rows = TensorRows(p.lanes)
        reads = RowReads(m, list(self.rd))
        x, mask = self.rd[0].data, self.rd[1].data
        back = Signal()  # RELU_BACKWARD (a register: the units' valids decode no opcode)
        m.d.comb += [
            forward.i.valid.eq(reads.valid & ~back), forward.i.p.last.eq(reads.last),
            backward.i.valid.eq(reads.valid & back), backward.i.p.last.eq(reads.last),
            forward.o.ready.eq(1), backward.o.ready.eq(1),
        ]
        for n in range(p.lanes):
            m.d.comb += [forward.i.p.data[n].eq(x[n][:8]), backward.i.p.e[n].eq(x[n][:8]),
                         backward.i.p.mask[n].eq(mask[n] != 0)]
        out = Mux(back, backward.o.p.data.as_value(), forward.o.p.data.as_value())
        result = widen(m, backward.o.p.data.shape()(out), p, "result")
        writes = RowWrites(m, rows, self.wr[0], forward.o.valid | backward.o.valid,
                           Mux(back, backward.o.p.last, forward.o.p.last), result, "result")
        masks = RowWrites(m, rows, self.wr[1], forward.o.valid, forward.o.p.last,
                          widen(m, forward.o.p.mask, p, "mask"), "mask")

        m.d.sync += self.done.eq(writes.done)
        with m.If(self.start):
            m.d.sync += [back.eq(op.opcode == Opcode.RELU_BACKWARD)] + rows.start(op.m)
            m.d.sync += reads.start(rows, op.m, [(op.a_bank, op.a_base), (op.b_bank, op.b_base)])
            m.d.sync += writes.start(op.dst_bank, op.dst_base, p.lanes)
            m.d.sync += masks.start(op.aux_bank, op.aux_base, p.lanes)
        return m
