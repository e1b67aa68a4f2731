"""Output-stationary int8 x int8 -> int32 systolic array with skew inside and a row-wise drain."""

from __future__ import annotations

import operator
from functools import reduce

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from niti_hw.params import HardwareParams
from niti_hw.perf.timing import min_tile_cycles
from niti_hw.rtl.layouts import operand_layout, result_row_layout
from niti_hw.rtl.multiplier import Int8Multiplier
from niti_hw.rtl.output_buffer import OutputBuffer, OutputRegister
from niti_hw.rtl.target import LOCAL



class SystolicArray(wiring.Component):
    """`rows` x `cols` processing elements, each `acc += a * b` in `acc_bits` (output stationary).

    Protocol (tiles of any M, N, K): the host cuts C = A @ B into tiles of rows x cols outputs,
    zero-pads A to `rows` rows and B to `cols` columns, and streams one beat per reduction step k:
    `a` = A[:, k] (rows int8), `b` = B[k, :] (cols int8), `last` on the final k of the tile (the next
    beat starts a new tile). Each tile drains as `rows` beats on `o`, one output row of `cols`
    accumulators per beat, row 0 first, `last` on the final row; the host crops the padding.

    Operand skew (row i delayed i cycles, column j delayed j) is inside the array. Each PE multiplies
    in an `Int8Multiplier` (on ECP5 a MULT18X18D with its input and output registers, then a
    fabric register) and
    accumulates in fabric (one 32-bit carry chain per cycle). Each PE copies its
    final sum into a result register while the next tile already accumulates, so tiles run back to
    back: throughput is one operand beat per cycle (rows*cols MACs/cycle) while K >= max(rows, cols).
    A tile's `last` beat is accepted only `max(rows, cols)` cycles after the previous tile's one, so
    shorter tiles get that many cycles (bubbles are inserted through `i.ready`).

    Latency: row 0 of a tile is valid `cols + 5` cycles (`niti_hw.perf.timing.first_row_latency`) after its last beat is accepted; row r
    follows r cycles later (cycles where the array is not stalled). With `backpressure` (the
    default) rows leave through an `OutputBuffer`: the array's clock enable is a register that drops
    when the buffer could fill, so backpressure on `o` stalls the array one cycle later instead of
    through a combinational global enable. Without it the consumer must take every row (`o.ready`
    is ignored) and rows leave through a plain register with the same latency: no clock-enable net
    reaches the array's ~7,000 registers, which is what let the tensor datapath route. Input gaps
    (valid low) are bubbles, not stalls. Data registers have no reset; only flags are reset.
    """

    def __init__(self, params: HardwareParams, backpressure: bool = True):
        if params.dataflow != "output_stationary":
            raise ValueError(f"the RTL array is output stationary; got dataflow={params.dataflow!r} "
                             "(weight/input stationary exist only in the cost model: niti-hw estimate)")
        params.check_rtl()
        self.params = params
        self.backpressure = backpressure
        super().__init__({
            "i": In(stream.Signature(operand_layout(params))),
            "o": Out(stream.Signature(result_row_layout(params))),
        })

    def elaborate(self, platform):
        p = self.params
        R, C, W = p.rows, p.cols, p.acc_bits
        m = Module()

        # Everything advances only while the output buffer's registered enable is high.
        out = OutputBuffer(m, self.o) if self.backpressure else OutputRegister(m, self.o)
        en, push = out.en, out.push

        # Spacing of tile ends: `since_last` counts enabled cycles since the previous last beat.
        spacing = min_tile_cycles(p)
        since_last = Signal(range(spacing + 1), init=spacing)
        last_ok = Signal()
        m.d.comb += [
            last_ok.eq(since_last >= spacing),
            self.i.ready.eq(en & (last_ok | ~self.i.p.last)),
        ]
        take = Signal()
        m.d.comb += take.eq(self.i.valid & self.i.ready)
        with m.If(en):
            with m.If(take & self.i.p.last):
                m.d.sync += since_last.eq(1)
            with m.Elif(~last_ok):
                m.d.sync += since_last.eq(since_last + 1)

        # Skew lines: row i (with the beat's valid/last flags) delayed i cycles, column j delayed j.
        def delay(value, n, name, reset_less=False, attrs=None):
            for stage in range(n):
                reg = Signal.like(value, name=f"{name}_d{stage}", reset_less=reset_less,
                                  attrs=attrs or {})
                with m.If(en):
                    m.d.sync += reg.eq(value)
                value = reg
            return value

        row_a, row_v, row_l = [], [], []
        for i in range(R):
            row_a.append(delay(self.i.p.a[i], i, f"skew_a{i}", reset_less=True))
            row_v.append(delay(take, i, f"skew_v{i}", attrs=LOCAL))
            row_l.append(delay(self.i.p.last, i, f"skew_l{i}", attrs=LOCAL))
        col_b = [delay(self.i.p.b[j], j, f"skew_b{j}", reset_less=True) for j in range(C)]

        # PE grid. a/valid/last travel right, b travels down; each PE registers its operands, the
        # multiplier adds its own registers, then the PE accumulates; on `last` it also writes the
        # final sum to `res`.
        res = [[None] * C for _ in range(R)]
        done = [[None] * C for _ in range(R)]
        b_in = list(col_b)
        for i in range(R):
            a_in, v_in, l_in = row_a[i], row_v[i], row_l[i]
            for j in range(C):
                a_r = Signal(signed(8), name=f"pe{i}_{j}_a", reset_less=True)
                b_r = Signal(signed(8), name=f"pe{i}_{j}_b", reset_less=True)
                v_r = Signal(name=f"pe{i}_{j}_v", attrs=LOCAL)
                l_r = Signal(name=f"pe{i}_{j}_l", attrs=LOCAL)
                m.submodules[f"pe{i}_{j}_mul"] = mul = Int8Multiplier(f"pe{i}_{j}")
                m.d.comb += [mul.a.eq(a_in), mul.b.eq(b_in[j]), mul.en.eq(en)]
                prod = mul.p
                # Product valid/last flags, aligned with the multiplier's output.
                pv = delay(v_r, Int8Multiplier.LATENCY - 1, f"pe{i}_{j}_pv", attrs=LOCAL)
                pl = delay(v_r & l_r, Int8Multiplier.LATENCY - 1, f"pe{i}_{j}_pl", attrs=LOCAL)
                acc = Signal(signed(W), name=f"pe{i}_{j}_acc", reset_less=True)
                # `fresh`: the next valid product starts a tile
                fresh = Signal(init=1, name=f"pe{i}_{j}_fresh", attrs=LOCAL)
                r = Signal(signed(W), name=f"pe{i}_{j}_res", reset_less=True)
                # A tile's first product is added to a masked accumulator (zero), not chosen after
                # the adder: the carry chain writes the accumulator with no LUT behind it.
                total = Signal(signed(W), name=f"pe{i}_{j}_sum")
                m.d.comb += total.eq((Mux(fresh, 0, acc) + prod)[:W].as_signed())
                with m.If(en):
                    m.d.sync += [
                        a_r.eq(a_in), b_r.eq(b_in[j]), v_r.eq(v_in), l_r.eq(l_in),
                    ]
                    with m.If(pv):
                        m.d.sync += [fresh.eq(pl), acc.eq(total)]
                        with m.If(pl):
                            m.d.sync += r.eq(total)
                res[i][j] = r
                # Row i is complete the cycle after its last column captured, C - 1 - j cycles
                # after this PE did: each PE times it with its own copy of that flag, so the
                # drain select is local instead of one flag fanning out over the whole row.
                done[i][j] = delay(pl, C - j, f"pe{i}_{j}_done", attrs=LOCAL)
                a_in, v_in, l_in = a_r, v_r, l_r
                b_in[j] = b_r

        # Drain: tiles end >= rows cycles apart, so at most one row is done: an AND-OR select,
        # not a priority chain.
        picked = []
        for i in range(R):
            row = Cat(*[res[i][j].as_unsigned() & done[i][j].replicate(W) for j in range(C)],
                      Const(int(i == R - 1), 1) & done[i][-1])
            picked.append(row)
        drain = Signal(out.data.shape(), name="drain_row", reset_less=True)
        drain_valid = Signal(name="drain_valid")
        with m.If(en):
            row_done = Cat(*[flags[-1] for flags in done])
            m.d.sync += [drain.eq(reduce(operator.or_, picked)), drain_valid.eq(row_done.any())]
        m.d.comb += [push.eq(en & drain_valid), out.data.eq(drain)]
        return m
