"""MaxPool2d of SPEC on int8 streams, non-overlapping windows (stride = kernel): forward a window's
largest value and where it was (the first largest wins), backward the error routed to that place
and zeros elsewhere (golden `layers.MaxPool2d`).

A window streams as kernel**2 beats in the golden model's offset order (offset = i * kernel + j for
row i, column j of the window), each beat `lanes` channels of one element: the address order is the
producer's, so any NHWC layout and any lane group of channels works.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from niti_hw.params import HardwareParams
from niti_hw.perf.timing import MAXPOOL_LATENCY
from niti_hw.rtl.layouts import INT8
from niti_hw.rtl.output_buffer import OutputBuffer

MAX_KERNEL = 8


def offset_shape(kernel: int):
    """Offsets 0..kernel**2 - 1 of a window element."""
    return unsigned(max(1, (kernel * kernel - 1).bit_length()))


def pool_in_layout(p: HardwareParams) -> data.StructLayout:
    """One window element, `lanes` channels; `last` on the tensor's final beat."""
    return data.StructLayout({"data": data.ArrayLayout(INT8, p.lanes), "last": 1})


def pool_out_layout(p: HardwareParams, kernel: int) -> data.StructLayout:
    """A window's largest value per channel and its offset in the window."""
    return data.StructLayout({"data": data.ArrayLayout(INT8, p.lanes),
                              "index": data.ArrayLayout(offset_shape(kernel), p.lanes), "last": 1})


def pool_back_in_layout(p: HardwareParams, kernel: int) -> data.StructLayout:
    """A window's error per channel and the offset its forward pass chose."""
    return data.StructLayout({"e": data.ArrayLayout(INT8, p.lanes),
                              "index": data.ArrayLayout(offset_shape(kernel), p.lanes), "last": 1})


def pool_back_out_layout(p: HardwareParams) -> data.StructLayout:
    """One window element's error: the window's error where it was the max, else 0."""
    return data.StructLayout({"data": data.ArrayLayout(INT8, p.lanes), "last": 1})


def _check_kernel(kernel) -> int:
    if isinstance(kernel, bool) or not isinstance(kernel, int) or not 1 <= kernel <= MAX_KERNEL:
        raise ValueError(f"kernel must be an int in 1..{MAX_KERNEL}; got {kernel!r}")
    return kernel


class MaxPool(wiring.Component):
    """Forward: kernel**2 element beats per window in, one beat out with each channel's largest
    value and its offset (strictly larger replaces, so the first largest wins, as golden).

    Throughput: one element beat per cycle. Latency: `MAXPOOL_LATENCY` cycles from a window's last
    beat accepted to its result valid. Backpressure on `o` stalls the input register one cycle
    later, through the buffer's registered clock enable.
    """

    def __init__(self, params: HardwareParams, kernel: int = 2):
        self.params, self.kernel = params, _check_kernel(kernel)
        super().__init__({
            "i": In(stream.Signature(pool_in_layout(params))),
            "o": Out(stream.Signature(pool_out_layout(params, kernel))),
        })

    def elaborate(self, platform):
        p, size = self.params, self.kernel * self.kernel
        m = Module()
        out = OutputBuffer(m, self.o)
        m.d.comb += self.i.ready.eq(out.ready)
        beat = Signal.like(self.i.p, name="beat", reset_less=True)  # data: no reset
        valid = Signal(name="beat_valid")
        offset = Signal(offset_shape(self.kernel), name="offset")  # of `beat` in its window
        ends = Signal(name="ends", init=size == 1)  # offset == size - 1, kept beside the counter
        with m.If(out.en):
            m.d.sync += [beat.eq(self.i.p), valid.eq(self.i.valid)]
            with m.If(valid):
                m.d.sync += [offset.eq(Mux(ends, 0, offset + 1)),
                             ends.eq(Mux(ends, size == 1, offset == size - 2))]
        best = Signal(data.ArrayLayout(INT8, p.lanes), name="best", reset_less=True)
        index = Signal(self.o.p.index.shape(), name="best_index", reset_less=True)
        for n in range(p.lanes):
            x = beat.data[n]
            wins = (offset == 0) | (x > best[n])
            new_best, new_index = Mux(wins, x, best[n]), Mux(wins, offset, index[n])
            with m.If(out.en & valid):
                m.d.sync += [best[n].eq(new_best), index[n].eq(new_index)]
            m.d.comb += [out.data.data[n].eq(new_best), out.data.index[n].eq(new_index)]
        m.d.comb += [out.push.eq(out.en & valid & ends), out.data.last.eq(beat.last)]
        return m


class MaxPoolBackward(wiring.Component):
    """Backward: one beat per window in (error and forward offset per channel), kernel**2 element
    beats out in offset order, each channel's error on its offset and 0 elsewhere; `last` passes
    to the window's final element beat.

    Throughput: one output beat per cycle, so one window every kernel**2 cycles. Latency:
    `MAXPOOL_LATENCY` cycles from a window's beat accepted to its first output beat valid.
    """

    def __init__(self, params: HardwareParams, kernel: int = 2):
        self.params, self.kernel = params, _check_kernel(kernel)
        super().__init__({
            "i": In(stream.Signature(pool_back_in_layout(params, kernel))),
            "o": Out(stream.Signature(pool_back_out_layout(params))),
        })

    def elaborate(self, platform):
        p, size = self.params, self.kernel * self.kernel
        m = Module()
        out = OutputBuffer(m, self.o)
        held = Signal.like(self.i.p, name="held", reset_less=True)  # data: no reset
        holding = Signal(name="holding")
        offset = Signal(offset_shape(self.kernel), name="offset")  # of the next output beat
        ends = Signal(name="ends", init=size == 1)  # offset == size - 1, kept beside the counter
        free = ~holding | ends  # the window held now has its final beat out this cycle
        m.d.comb += self.i.ready.eq(out.ready & free)
        with m.If(out.en):
            with m.If(free):
                m.d.sync += [held.eq(self.i.p), holding.eq(self.i.valid), offset.eq(0),
                             ends.eq(size == 1)]
            with m.Else():
                m.d.sync += [offset.eq(offset + 1), ends.eq(offset == size - 2)]
        for n in range(p.lanes):
            m.d.comb += out.data.data[n].eq(Mux(held.index[n] == offset, held.e[n], 0))
        m.d.comb += [out.push.eq(out.en & holding), out.data.last.eq(held.last & ends)]
        return m
