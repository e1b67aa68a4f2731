"""What the sequencer's checks need of a geometry register: how many words each tensor of the
geometry's instructions spans, and whether the geometry is one the reference machine's golden
layers would walk as the address generators do.

The word counts are products of the geometry's fields, one a cycle into a single two-stage
multiplier after the sequencer latches a geometry: the next instruction's check comes a
retirement, a fetch, a decode and the products' cycle later, so the counts need neither a
multiplier each nor an adder tree. Each is capped at 2**`bits`, above every bank's words: the
sequencer refuses a tensor that large whether it knows its exact size or not, and the multiplier
is a capped shift-and-add in LUTs (`capped_product`; the array needs the MULT18X18Ds)."""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal, Value, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from niti_hw.perf.timing import (DISPATCH_CYCLES, FETCH_CYCLES, GEOMETRY_CHECK_LATENCY,
                                 RETIRE_CYCLES)
from niti_hw.program.isa import GEOMETRY_FIELDS
from niti_hw.rtl.instruction import geometry_layout
from niti_hw.rtl.shift_add import (capped_factors, capped_terms, capped_total, partial_sums,
                                   shifted_sum)

STEPS = (("pooled_rows", "batch", "out_height"), ("window", "kernel_h", "kernel_w"),
         ("image_rows", "batch", "height"), ("windows", "pooled_rows", "out_width"),
         ("depth", "window", "channels"), ("image_row", "width", "channels"),
         ("outputs", "windows", "channels"), ("columns", "windows", "depth"),
         ("inputs", "image_rows", "image_row"))
"""The products in the order the multiplier takes them, one a cycle, (result, factor, factor):
each factor a geometry field or the result of a step at least PRODUCT_LATENCY before."""
PRODUCT_LATENCY = 3
"""A product's cycles: its factors picked and ordered (`capped_factors`) into registers, their
shifted terms summed in part into registers, then in whole."""

for _n, (_, *_factors) in enumerate(STEPS):
    if any(name in _factors for name, *_ in STEPS[max(0, _n - PRODUCT_LATENCY + 1):_n]):
        raise RuntimeError(f"rtl/geometry.py: step {_n + 1} takes a product not yet formed")
if (GEOMETRY_CHECK_LATENCY != len(STEPS) + PRODUCT_LATENCY - 1
        or GEOMETRY_CHECK_LATENCY > RETIRE_CYCLES + FETCH_CYCLES + DISPATCH_CYCLES - 2):
    raise RuntimeError("rtl/geometry.py forms its products one a cycle, ready by the next "
                       f"instruction's check: perf.timing's GEOMETRY_CHECK_LATENCY must say "
                       f"{len(STEPS) + PRODUCT_LATENCY - 1}")

EXTENTS = ("inputs", "outputs", "windows", "depth", "columns")


def extents_layout(bits: int) -> data.StructLayout:
    """`inputs`: N*H*W*C; `outputs`: N*OH*OW*C; `windows`: N*OH*OW; `depth`: KH*KW*C;
    `columns`: windows * depth, each min(its value, 2**bits); `shaped`: no field but padding is
    0 and OH, OW are golden's (H + 2 * padding - KH) // stride + 1 (W likewise)."""
    return data.StructLayout({**{name: unsigned(bits + 1) for name in EXTENTS}, "shaped": 1})


def _cap(value, bits: int) -> Value:
    """min(value, 2**bits) in bits + 1 bits."""
    value = Value.cast(value)
    if len(value) <= bits:
        return value
    return Mux(value[bits:].any(), 1 << bits, value[:bits])


def _registered(m: Module, values, load) -> list:
    """Each value into a register of its shape when `load`."""
    registers = [Signal.like(Value.cast(value)) for value in values]
    with m.If(load):
        m.d.sync += [register.eq(value) for register, value in zip(registers, values)]
    return registers


def _fits(m: Module, size, padding, kernel, stride, out, step) -> Value:
    """out == (size + 2 * padding - kernel) // stride + 1, without a divider (nor a multiplier:
    the stride is narrow): out * stride - stride + kernel <= size + 2 * padding < out * stride +
    kernel, over `step`s 1 and 2 (the product, then the sums) into a compare valid from step 3."""
    some, span, high = _registered(m, (out != 0, size + 2 * padding, shifted_sum(out, stride)),
                                   step == 1)
    some, span, low, high = _registered(m, (some, span, high - stride + kernel, high + kernel),
                                        step == 2)
    return some & (low <= span) & (span < high)


class GeometryExtents(wiring.Component):
    """The extents of the `conv` and `pool` geometry registers.

    `load` (one-hot: conv, pool) in the cycle the sequencer latches that register; its `extents`
    follow `GEOMETRY_CHECK_LATENCY` cycles after the register holds the new geometry (one product
    a cycle, `STEPS`, each `PRODUCT_LATENCY` cycles), the other register's stay. One geometry at
    a time: the next load comes after the next instruction's check."""

    def __init__(self, bits: int):
        self.bits = bits
        super().__init__({"conv": In(geometry_layout()), "pool": In(geometry_layout()),
                          "load": In(2), "conv_extents": Out(extents_layout(bits)),
                          "pool_extents": Out(extents_layout(bits))})

    def elaborate(self, platform):
        m = Module()
        bits = self.bits
        step = Signal(range(len(STEPS) + 1))  # the product this cycle forms, 0: none
        pool = Signal()  # which register's extents
        with m.If(self.load.any()):
            m.d.sync += [step.eq(1), pool.eq(self.load[1])]
        with m.Elif(step != 0):
            m.d.sync += step.eq(Mux(step == len(STEPS), 0, step + 1))
        g = geometry_layout()(Mux(pool, self.pool.as_value(), self.conv.as_value()))
        results = {name: Signal(bits + 1, name=name) for name, _, _ in STEPS}
        factors = {**{name: _cap(g[name], bits) for name, _ in GEOMETRY_FIELDS[1:]}, **results}
        a, b = Signal(bits + 1), Signal(bits + 1)
        with m.Switch(step):
            for n, (_, first, second) in enumerate(STEPS, start=1):
                with m.Case(n):
                    m.d.comb += [a.eq(factors[first]), b.eq(factors[second])]
        ordering = Signal.like(step)  # the step whose factors are in `ordered`
        later = Signal.like(step)  # the step whose product completes this cycle
        wide, narrow, too_wide = _registered(m, capped_factors(a, b, bits), step != 0)
        terms, over = capped_terms(wide, narrow, bits)
        staged = _registered(m, [too_wide | over, *partial_sums(terms)], ordering != 0)
        m.d.sync += [ordering.eq(step), later.eq(ordering)]
        product = capped_total(staged[1:], staged[0], bits)
        targets = (self.conv_extents, self.pool_extents)
        for n, (name, _, _) in enumerate(STEPS, start=1):
            with m.If(later == n):
                m.d.sync += results[name].eq(product)
                if name in EXTENTS:
                    for index, extents in enumerate(targets):
                        with m.If(pool == index):
                            m.d.sync += extents[name].eq(product)
        nonzero, = _registered(m, [Cat(*[g[name] != 0 for name, _ in GEOMETRY_FIELDS[1:]
                                         if name != "padding"]).all()], step == 1)
        shaped = (nonzero
                  & _fits(m, g.height, g.padding, g.kernel_h, g.stride, g.out_height, step)
                  & _fits(m, g.width, g.padding, g.kernel_w, g.stride, g.out_width, step))
        with m.If(step == 3):
            for index, extents in enumerate(targets):
                with m.If(pool == index):
                    m.d.sync += extents.shaped.eq(shaped)
        return m
