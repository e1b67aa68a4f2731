"""Values one at a time into `lanes`-wide beats of the rounding unit's input, in stream order."""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from niti_hw.params import HardwareParams
from niti_hw.rtl.layouts import round_in_layout
from niti_hw.rtl.output_buffer import OutputBuffer


def packer_in_layout(shape) -> data.StructLayout:
    """One value; `last` ends the tensor (its beat goes out partial, `keep` a prefix)."""
    return data.StructLayout({"value": shape, "last": 1})


class LanePacker(wiring.Component):
    """Value n of a tensor goes to lane n % lanes; a beat leaves when its lanes are full or on the
    tensor's `last` value, with `keep` and `last`, and every beat carries the shift `k`.

    Values are taken one per cycle into lane registers (each lane's enable decodes the lane
    counter; the value fans out, no lane multiplexer); the value that completes a beat goes
    with the lanes before it into an `OutputBuffer`, valid on `o` the next cycle. `i.ready` is
    the buffer's registered ready, so the consumer's ready reaches no logic upstream.
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
        out = OutputBuffer(m, self.o)
        m.d.comb += self.i.ready.eq(out.ready)
        lane = Signal(range(lanes), name="lane")
        held = Signal.like(self.o.p.data, name="held", reset_less=True)  # the beat's lanes so far
        keep = Signal(lanes, name="held_keep", reset_less=True)
        take = self.i.valid & out.en
        ends = self.i.p.last | (lane == lanes - 1)
        m.d.comb += [out.push.eq(take & ends), out.data.last.eq(self.i.p.last),
                     out.data.k.eq(self.k)]
        for n in range(lanes):
            here = lane == n
            m.d.comb += [out.data.data[n].eq(Mux(here, self.i.p.value, held[n])),
                         out.data.keep[n].eq(Mux(lane == 0, n == 0, keep[n] | here))]
        with m.If(take):
            m.d.sync += [lane.eq(Mux(ends, 0, lane + 1)), keep.eq(out.data.keep)]
            for n in range(lanes):
                with m.If(lane == n):
                    m.d.sync += held[n].eq(self.i.p.value)
        return m
