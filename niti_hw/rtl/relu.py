"""ReLU of SPEC on int8 streams: forward y = x where x > 0, else 0, with the mask the backward pass
needs; backward e where the mask is set, else 0 (golden `layers.ReLU`)."""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from niti_hw.params import HardwareParams
from niti_hw.perf.timing import RELU_LATENCY
from niti_hw.rtl.layouts import INT8
from niti_hw.rtl.output_buffer import OutputBuffer


def relu_in_layout(p: HardwareParams) -> data.StructLayout:
    """`lanes` int8 activations; `last` marks a tensor's final beat."""
    return data.StructLayout({"data": data.ArrayLayout(INT8, p.lanes), "last": 1})


def relu_out_layout(p: HardwareParams) -> data.StructLayout:
    """The activations after ReLU and their mask (bit n set where value n was above zero)."""
    return data.StructLayout({"data": data.ArrayLayout(INT8, p.lanes), "mask": p.lanes, "last": 1})


def relu_back_in_layout(p: HardwareParams) -> data.StructLayout:
    """`lanes` int8 errors and the forward pass's mask of the same elements."""
    return data.StructLayout({"e": data.ArrayLayout(INT8, p.lanes), "mask": p.lanes, "last": 1})


def relu_back_out_layout(p: HardwareParams) -> data.StructLayout:
    """The errors let through by the mask."""
    return data.StructLayout({"data": data.ArrayLayout(INT8, p.lanes), "last": 1})


class _Elementwise(wiring.Component):
    """One registered input beat, a per-lane function of it written into an `OutputBuffer`.

    Throughput: one beat per cycle. Latency: `RELU_LATENCY` cycles from acceptance to a valid
    output. Backpressure on `o` stalls the input register one cycle later, through the buffer's
    registered clock enable. A partial final beat is the producer's to pad: lanes are independent.
    """

    def __init__(self, params: HardwareParams, in_layout, out_layout):
        self.params = params
        super().__init__({
            "i": In(stream.Signature(in_layout)),
            "o": Out(stream.Signature(out_layout)),
        })

    def elaborate(self, platform):
        m = Module()
        out = OutputBuffer(m, self.o)
        m.d.comb += self.i.ready.eq(out.ready)
        beat, valid = self.i.p, self.i.valid
        for n in range(RELU_LATENCY - 1):  # the last stage is the output buffer's slot
            stage = Signal.like(beat, name=f"beat{n}", reset_less=True)  # data: no reset
            stage_valid = Signal(name=f"valid{n}")
            with m.If(out.en):
                m.d.sync += [stage.eq(beat), stage_valid.eq(valid)]
            beat, valid = stage, stage_valid
        m.d.comb += [out.push.eq(out.en & valid), out.data.last.eq(beat.last)]
        self.lanes(m, beat, out.data)
        return m

    def lanes(self, m: Module, beat, data) -> None:
        raise NotImplementedError


class Relu(_Elementwise):
    """Forward ReLU: `lanes` int8 values per beat -> max(x, 0) as golden keeps it (x where x > 0)
    and the mask bit x > 0 of each value, for `ReluBackward`."""

    def __init__(self, params: HardwareParams):
        super().__init__(params, relu_in_layout(params), relu_out_layout(params))

    def lanes(self, m, beat, data):
        for n in range(self.params.lanes):
            x = beat.data[n]
            positive = ~x[-1] & x.any()
            m.d.comb += [data.data[n].eq(Mux(positive, x, 0)), data.mask[n].eq(positive)]


class ReluBackward(_Elementwise):
    """Backward ReLU: `lanes` int8 errors and their forward mask per beat -> e where the mask
    is set, else 0."""

    def __init__(self, params: HardwareParams):
        super().__init__(params, relu_back_in_layout(params), relu_back_out_layout(params))

    def lanes(self, m, beat, data):
        for n in range(self.params.lanes):
            m.d.comb += data.data[n].eq(Mux(beat.mask[n], beat.e[n], 0))

