"""Address generators of the geometry engines: nested counters that walk a convolution's or a
pool's geometry one element per cycle, the walks `niti_hw.program.addressing` states in Python
(`pool_walk`, `gather_walk`). Each element leaves the walk a fixed number of cycles after its
counters hold it (`WINDOW_WALK_LATENCY`, `GATHER_WALK_LATENCY`): a word address relative to the
tensor's base, whether it lies in the tensor (`inside`), and where it sits in its group (the
words one result word is made of). The address is a Horner chain of the counters, one
multiply-add per register, so no two multipliers follow each other in a cycle."""

from __future__ import annotations

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, Value, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from niti_hw.perf.timing import GATHER_WALK_LATENCY, WINDOW_WALK_LATENCY
from niti_hw.program.isa import GEOMETRY_FIELDS
from niti_hw.rtl.instruction import geometry_layout
from niti_hw.rtl.row_stream import M_BITS
from niti_hw.rtl.shift_add import partial_sums, shifted_terms, tree_sum

FIELD_BITS = dict(GEOMETRY_FIELDS)
OFFSET_BITS = (FIELD_BITS["kernel_h"] + FIELD_BITS["kernel_w"])
"""An offset kh * KW + kw in a window."""


def element_layout(offset: bool = False) -> data.StructLayout:
    """One walk element: `addr` (a word relative to the tensor's base, meaningful where `inside`),
    `first` and `last` of its group, `final` on the walk's last element; with `offset`, the
    element's place kh * KW + kw in its window."""
    fields = {"valid": 1, "addr": unsigned(M_BITS), "inside": 1, "first": 1, "last": 1,
              "final": 1}
    return data.StructLayout({**fields, "offset": unsigned(OFFSET_BITS)} if offset else fields)


def _counter(name: str, field: str) -> Signal:
    return Signal(FIELD_BITS[field], name=name)


def _divmod(padding, stride):
    """(padding // stride, padding % stride) from a table of every 4-bit pair: a few LUTs deep,
    where a divider's chain of subtractions would set the walk's clock."""
    bits = FIELD_BITS["padding"]
    if FIELD_BITS["stride"] != bits:
        raise RuntimeError("the table is indexed by equal padding and stride fields")
    table = Array(Const(divmod(p, s)[0] | divmod(p, s)[1] << bits if s else 0, 2 * bits)
                  for s in range(1 << bits) for p in range(1 << bits))
    entry = table[Cat(padding, stride)]
    return entry[:bits], entry[bits:]


def _lasts(m: Module, g, fields) -> list:
    """Each field less one, registered from the geometry (it holds from `start` on, so the
    registers are right from the walk's first step): the loop ends compare a register, no
    subtractor in front of the counters."""
    lasts = []
    for field in fields:
        last = Signal(FIELD_BITS[field], name=f"last_{field}")
        m.d.sync += last.eq(g[field] - 1)
        lasts.append(last)
    return lasts


def _delay(m: Module, values: list, cycles: int, name: str) -> list:
    """Each of `values` (signals, views or expressions) through `cycles` registers."""
    for cycle in range(cycles):
        later = [Signal.like(value, name=f"{name}{cycle}_{n}") for n, value in enumerate(values)]
        m.d.sync += [register.eq(value) for register, value in zip(later, values)]
        values = later
    return values


def _horner(m: Module, first, steps, name: str, bits: int, fabric=()):
    """first, then acc * factor + term for each (factor, term) of `steps` (the terms as they are
    in the cycle `first` is), each step a product register and a sum register: no adder behind a
    multiplier in one cycle. Modulo 2**bits (`banks.word_bits`), which is the address wherever an
    element is `inside` (the sequencer refuses a tensor past its bank): the products fit one
    MULT18X18D each; a kernel-sized factor's, and those of the steps numbered in `fabric`, are
    shift-and-adds in LUTs (the core's array needs the MULT18X18Ds), their shifted copies summed
    in part into the product registers (`partial_sums`), then with the term. Returns (value,
    cycles it took)."""
    acc, terms = first, [term for _, term in steps]
    for n, (factor, _) in enumerate(steps):
        total = Signal(bits, name=f"{name}{n}")
        (term, *rest) = _delay(m, terms, 1, f"{name}_term{n}_")
        if n in fabric or len(Value.cast(factor)) <= FIELD_BITS["kernel_h"]:
            parts = partial_sums(shifted_terms(acc[:bits], factor))
        else:
            parts = [acc[:bits] * factor]
        products = [Signal(bits, name=f"{name}_product{n}_{k}") for k in range(len(parts))]
        m.d.sync += [*[held.eq(part) for held, part in zip(products, parts)],
                     total.eq(tree_sum([*products, term]))]
        acc, terms = total, _delay(m, rest, 1, f"{name}_later{n}_")
    return acc, 2 * len(steps)


class WindowWalk(wiring.Component):
    """POOL's walk (`addressing.pool_walk`): for each window (n, oh, ow) and channel c, in the
    NHWC order of the pooled tensor, the window's KH x KW input words in (kh, kw) order, one a
    cycle from the cycle after `start`; a group is one pooled word's window. Words in the zero
    border are not `inside`. `geometry` holds while the walk runs; every field nonzero."""

    def __init__(self, bits: int):
        self.bits = bits  # of an address in the largest bank: `banks.word_bits`
        super().__init__({"start": In(1), "geometry": In(geometry_layout()),
                          "o": Out(element_layout())})

    def elaborate(self, platform):
        g, o = self.geometry, self.o
        m = Module()
        active = Signal()
        n, oh, ow, c = (_counter("n", "batch"), _counter("oh", "out_height"),
                        _counter("ow", "out_width"), _counter("c", "channels"))
        i, j = _counter("i", "kernel_h"), _counter("j", "kernel_w")
        corner_y = Signal(FIELD_BITS["out_height"] + FIELD_BITS["stride"])  # oh * stride
        corner_x = Signal(FIELD_BITS["out_width"] + FIELD_BITS["stride"])  # ow * stride
        fields = ("kernel_w", "kernel_h", "channels", "out_width", "out_height", "batch")
        lasts = _lasts(m, g, fields)
        ends = [counter == last for counter, last in zip((j, i, c, ow, oh, n), lasts)]
        y, x = corner_y + i - g.padding, corner_x + j - g.padding
        with m.If(self.start):
            m.d.sync += [active.eq(1), n.eq(0), oh.eq(0), ow.eq(0), c.eq(0), i.eq(0), j.eq(0),
                         corner_y.eq(0), corner_x.eq(0)]
        with m.Elif(active):
            m.d.sync += j.eq(j + 1)
            with m.If(ends[0]):
                m.d.sync += [j.eq(0), i.eq(i + 1)]
                with m.If(ends[1]):
                    m.d.sync += [i.eq(0), c.eq(c + 1)]
                    with m.If(ends[2]):
                        m.d.sync += [c.eq(0), ow.eq(ow + 1), corner_x.eq(corner_x + g.stride)]
                        with m.If(ends[3]):
                            m.d.sync += [ow.eq(0), corner_x.eq(0), oh.eq(oh + 1),
                                         corner_y.eq(corner_y + g.stride)]
                            with m.If(ends[4]):
                                m.d.sync += [oh.eq(0), corner_y.eq(0), n.eq(n + 1)]
                                with m.If(ends[5]):
                                    m.d.sync += active.eq(0)
        element = Signal(element_layout(), name="element")
        m.d.comb += [
            element.valid.eq(active),
            element.inside.eq((corner_y + i >= g.padding) & (corner_y + i < g.height + g.padding)
                              & (corner_x + j >= g.padding)
                              & (corner_x + j < g.width + g.padding)),
            element.first.eq((i == 0) & (j == 0)), element.last.eq(ends[0] & ends[1]),
            element.final.eq(active & ends[0] & ends[1] & ends[2] & ends[3] & ends[4] & ends[5]),
        ]
        address, cycles = _horner(m, n, [(g.height, y), (g.width, x), (g.channels, c)],
                                  "address", self.bits, fabric=(2,))
        if cycles != WINDOW_WALK_LATENCY:
            raise RuntimeError("perf.timing's WINDOW_WALK_LATENCY must count the address steps")
        (element,) = _delay(m, [element], cycles, "element")
        m.d.comb += [o.eq(element), o.addr.eq(address)]
        return m


class GatherWalk(wiring.Component):
    """COL2IM's and POOL_BACKWARD's walk (`addressing.gather_walk`): for each input word
    (n, y, x, c) in NHWC order, the ceil(KH/stride) x ceil(KW/stride) windows that may cover it,
    in (di, dj) order, one a cycle from the cycle after `start`; a group is one input word's
    candidates. With (qy, ry) = divmod(y + padding, stride), candidate di is window row qy - di
    at kernel row ry + di * stride (columns likewise); it is `inside` where that window exists
    and covers the word. `addr`: with `columns`, the im2col column word
    (window * KH*KW + offset) * C + c, else the pooled word window * C + c; `offset` the word's
    kh * KW + kw in the window. No divider: the quotient and remainder step with y and x, the
    candidates stop where di * stride reaches KH. `geometry` and `columns` hold while the walk
    runs; every field but padding nonzero."""

    def __init__(self, bits: int):
        self.bits = bits  # of an address in the largest bank: `banks.word_bits`
        super().__init__({"start": In(1), "columns": In(1), "geometry": In(geometry_layout()),
                          "o": Out(element_layout(offset=True))})

    def elaborate(self, platform):
        g, o = self.geometry, self.o
        m = Module()
        active = Signal()
        n, y, x, c = (_counter("n", "batch"), _counter("y", "height"), _counter("x", "width"),
                      _counter("c", "channels"))
        di, dj = _counter("di", "kernel_h"), _counter("dj", "kernel_w")
        step = FIELD_BITS["kernel_h"] + FIELD_BITS["stride"]
        row_step, col_step = Signal(step, name="di_stride"), Signal(step, name="dj_stride")
        quotient = FIELD_BITS["height"] + 1
        qy, qx = Signal(quotient, name="qy"), Signal(quotient, name="qx")
        ry, rx = _counter("ry", "stride"), _counter("rx", "stride")
        q0, r0 = _divmod(g.padding, g.stride)
        kh, kw = ry + row_step, rx + col_step
        oh, ow = qy - di, qx - dj
        # the next candidate's kernel step, a register beside the step: the ends compare only
        row_next = Signal(step, name="di_stride_next")
        col_next = Signal(step, name="dj_stride_next")
        last_c, last_x, last_y, last_n, last_r = _lasts(
            m, g, ("channels", "width", "height", "batch", "stride"))
        ends = [col_next >= g.kernel_w, row_next >= g.kernel_h,
                c == last_c, x == last_x, y == last_y, n == last_n]

        def advance(q, r):  # (q, r) = divmod(position + padding, stride), one position on
            wraps = r == last_r
            return [q.eq(q + wraps), r.eq(Mux(wraps, 0, r + 1))]

        with m.If(self.start):
            m.d.sync += [active.eq(1), n.eq(0), y.eq(0), x.eq(0), c.eq(0), di.eq(0), dj.eq(0),
                         row_step.eq(0), col_step.eq(0), row_next.eq(g.stride),
                         col_next.eq(g.stride), qy.eq(q0), ry.eq(r0), qx.eq(q0), rx.eq(r0)]
        with m.Elif(active):
            m.d.sync += [dj.eq(dj + 1), col_step.eq(col_next), col_next.eq(col_next + g.stride)]
            with m.If(ends[0]):
                m.d.sync += [dj.eq(0), col_step.eq(0), col_next.eq(g.stride), di.eq(di + 1),
                             row_step.eq(row_next), row_next.eq(row_next + g.stride)]
                with m.If(ends[1]):
                    m.d.sync += [di.eq(0), row_step.eq(0), row_next.eq(g.stride), c.eq(c + 1)]
                    with m.If(ends[2]):
                        m.d.sync += [c.eq(0), x.eq(x + 1)] + advance(qx, rx)
                        with m.If(ends[3]):
                            m.d.sync += [x.eq(0), qx.eq(q0), rx.eq(r0), y.eq(y + 1)]
                            m.d.sync += advance(qy, ry)
                            with m.If(ends[4]):
                                m.d.sync += [y.eq(0), qy.eq(q0), ry.eq(r0), n.eq(n + 1)]
                                with m.If(ends[5]):
                                    m.d.sync += active.eq(0)
        inside = ((kh < g.kernel_h) & (kw < g.kernel_w) & (di <= qy) & (oh < g.out_height)
                  & (dj <= qx) & (ow < g.out_width))
        element = Signal(element_layout(offset=True), name="element")
        m.d.comb += [
            element.valid.eq(active), element.inside.eq(inside),
            element.first.eq((di == 0) & (dj == 0)), element.last.eq(ends[0] & ends[1]),
            element.final.eq(active & ends[0] & ends[1] & ends[2] & ends[3] & ends[4] & ends[5]),
        ]
        # The column word ((window * KH + kh) * KW + kw) * C + c, or the pooled word: the kernel
        # steps multiply by 1 and add 0. kh, kw past 4 bits only where not inside.
        kh4, kw4 = kh[:FIELD_BITS["kernel_h"]], kw[:FIELD_BITS["kernel_w"]]
        steps = [(g.out_height, oh), (g.out_width, ow),
                 (Mux(self.columns, g.kernel_h, 1), Mux(self.columns, kh4, 0)),
                 (Mux(self.columns, g.kernel_w, 1), Mux(self.columns, kw4, 0)), (g.channels, c)]
        address, cycles = _horner(m, n, steps, "address", self.bits, fabric=(4,))
        if cycles != GATHER_WALK_LATENCY:
            raise RuntimeError("perf.timing's GATHER_WALK_LATENCY must count the address steps")
        offset, took = _horner(m, kh4, [(g.kernel_w, kw4)], "offset", OFFSET_BITS)
        (offset,) = _delay(m, [offset[:OFFSET_BITS]], cycles - took, "offset_later")
        (element,) = _delay(m, [element], cycles, "element")
        m.d.comb += [o.eq(element), o.addr.eq(address), o.offset.eq(offset)]
        return m
