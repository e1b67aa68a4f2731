"""Leading-one detector of max |v| over a tensor: B(V) of SPEC, for `lanes` int32 values per beat."""

from __future__ import annotations

import operator
from functools import reduce

from amaranth.hdl import Cat, Const, Module, Mux, Signal, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from niti_hw.params import HardwareParams
from niti_hw.rtl.layouts import BITWIDTH, lanes_layout


def leading_one(value):
    """(any bit set, index of the highest set bit) of an unsigned value whose width is a power of
    two, as a balanced tree: each level picks the upper half if it holds a one, so the depth is
    log2(width) muxes behind OR trees, not a chain of `width` priority muxes."""
    width = len(value)
    if width == 1:
        return value[0], Const(0, 0)
    half = width // 2
    hi_any, hi_index = leading_one(value[half:])
    lo_any, lo_index = leading_one(value[:half])
    return hi_any | lo_any, Cat(Mux(hi_any, hi_index, lo_index), hi_any)


def register_bit_length(m: Module, target, value) -> None:
    """target <= bit_length(value), as a register.

    bit_length(v) is the index of the leading one of Cat(1, v): the constant one at index 0 stands
    for v = 0, and every bit of v moves up by one, so no `index + 1` adder (a carry chain after the
    tree) is needed. The vector is padded with zeros to a power of two, which synthesis folds away.
    Kept in the sync domain: a combinational block whose inputs never leave their initial value is
    never evaluated by Icarus and would read as X.
    """
    width = 1 + len(value)
    padded = Cat(Const(1, 1), value, Const(0, (1 << (width - 1).bit_length()) - width))
    _, index = leading_one(padded)
    m.d.sync += target.eq(index)


class BitwidthDetector(wiring.Component):
    """B(tensor) = bit_length(max |v|), computed as the leading one of the OR of all magnitudes.

    Input `i`: `lanes` int32 values per beat, `last` on the tensor's final beat (pad a short final
    beat with zeros). Output `o`: one beat per tensor carrying B in 0..32 (32 for -2**31).

    Throughput: one beat per cycle, tensors back to back. Latency: B is valid `DETECTOR_LATENCY` (3, in niti_hw.perf.timing) cycles after the
    tensor's last beat is accepted (magnitude, OR into the accumulator, leading-one). Backpressure
    on `o` freezes the pipeline.
    """

    def __init__(self, params: HardwareParams):
        self.params = params
        super().__init__({
            "i": In(stream.Signature(lanes_layout(params))),
            "o": Out(stream.Signature(BITWIDTH)),
        })

    def elaborate(self, platform):
        p = self.params
        m = Module()
        en = Signal()
        take = Signal()
        m.d.comb += [
            en.eq(~self.o.valid | self.o.ready),
            self.i.ready.eq(en),
            take.eq(self.i.valid & en),
        ]

        # Stage 1: |v| per lane (32 bits hold 2**31), registered: the negation's carry chain alone.
        mags = []
        for lane in range(p.lanes):
            v = self.i.p.data[lane]
            mag = Signal(unsigned(32), name=f"s1_mag{lane}", reset_less=True)  # data: no reset
            with m.If(en):
                m.d.sync += mag.eq(Mux(v < 0, -v, v)[:32])
            mags.append(mag)
        s1_or = Signal(unsigned(32))
        m.d.comb += s1_or.eq(reduce(operator.or_, mags))
        s1_valid = Signal()
        s1_last = Signal()
        # Stage 2: OR across lanes into the tensor's accumulator; hand the total on at its last beat.
        acc = Signal(unsigned(32))
        total = Signal(unsigned(32))
        total_valid = Signal()
        with m.If(en):
            m.d.sync += [s1_valid.eq(take), s1_last.eq(self.i.p.last)]
            m.d.sync += total_valid.eq(s1_valid & s1_last)
            with m.If(s1_valid):
                with m.If(s1_last):
                    m.d.sync += [acc.eq(0), total.eq(acc | s1_or)]
                with m.Else():
                    m.d.sync += acc.eq(acc | s1_or)
            # Stage 3: leading-one detector into the output register.
            m.d.sync += self.o.valid.eq(total_valid)
            register_bit_length(m, self.o.payload, total)
        return m
