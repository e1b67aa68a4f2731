"""Values one at a time into `lanes`-wide beats of the rounding unit's input, in stream order."""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from niti_hw.params import HardwareParams
from niti_hw.rtl.layouts import round_in_layout


def packer_in_layout(shape) -> data.StructLayout:
    """One value; `last` ends the tensor (its beat goes out partial, `keep` a prefix)."""
    return data.StructLayout({"value": shape, "last": 1})


class LanePacker(wiring.Component):
    """Value n of a tensor goes to lane n % lanes; a beat leaves when its lanes are full or on the
    tensor's `last` value, with `keep` and `last`, and every beat carries the shift `k`.

    The beat's registers are its output (ShiftRound's `i`): a value is written straight into its
    lane (each lane's enable decodes the lane counter; the value fans out, no lane multiplexer),
    and the value that starts the next beat is taken in the cycle the full one leaves, so values
    move one per cycle while the consumer is ready.
    """

    def __init__(self, params: HardwareParams, shape, k: int):
        self.params, self.k = params, k
        super().__init__({
            "i": In(stream.Signature(packer_in_layout(shape))),
            "o": Out(stream.Signature(round_in_layout(params))),
        })

    def elaborate(self, platform):
        m = Module()
        lanes = self.params.lanes
        lane = Signal(range(lanes), name="lane")
        beat = Signal.like(self.o.p, name="beat", reset_less=True)
        full = Signal(name="full")
        m.d.comb += [self.o.valid.eq(full), self.o.p.eq(beat),
                     self.i.ready.eq(~full | self.o.ready)]
        with m.If(self.o.ready):
            m.d.sync += full.eq(0)
        with m.If(self.i.valid & self.i.ready):
            ends = self.i.p.last | (lane == lanes - 1)
            m.d.sync += [lane.eq(Mux(ends, 0, lane + 1)), beat.k.eq(self.k)]
            for n in range(lanes):
                with m.If(lane == n):
                    m.d.sync += beat.data[n].eq(self.i.p.value)
                m.d.sync += beat.keep[n].eq(Mux(lane == 0, n == 0, beat.keep[n] | (lane == n)))
            with m.If(ends):
                m.d.sync += [full.eq(1), beat.last.eq(self.i.p.last)]
        return m
