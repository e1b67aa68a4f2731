"""Output-stationary int8 x int8 -> int32 systolic array with skew inside and a row-wise drain."""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, signed
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from niti_hw.params import HardwareParams
from niti_hw.rtl.layouts import operand_layout, result_row_layout

# Cycles from a tile's last operand beat being accepted to its first result row being valid, on top
# of `cols`: skew to the last column (cols - 1), PE operand register, product register,
# accumulate/capture register, row select register.
DRAIN_EXTRA = 4


def first_row_latency(p: HardwareParams) -> int:
    """Enabled cycles from accepting a tile's last operand beat to its row 0 being valid."""
    return p.cols - 1 + DRAIN_EXTRA


class SystolicArray(wiring.Component):
    """`rows` x `cols` processing elements, each `acc += a * b` in `acc_bits` (output stationary).

    Protocol (tiles of any M, N, K): the host cuts C = A @ B into tiles of rows x cols outputs,
    zero-pads A to `rows` rows and B to `cols` columns, and streams one beat per reduction step k:
    `a` = A[:, k] (rows int8), `b` = B[k, :] (cols int8), `last` on the final k of the tile (the next
    beat starts a new tile). Each tile drains as `rows` beats on `o`, one output row of `cols`
    accumulators per beat, row 0 first, `last` on the final row; the host crops the padding.

    Operand skew (row i delayed i cycles, column j delayed j) is inside the array. Each PE copies its
    final sum into a result register while the next tile already accumulates, so tiles run back to
    back: throughput is one operand beat per cycle (rows*cols MACs/cycle) while K >= max(rows, cols).
    A tile's `last` beat is accepted only `max(rows, cols)` cycles after the previous tile's one, so
    shorter tiles get that many cycles (bubbles are inserted through `i.ready`).

    Latency: row 0 of a tile is valid `cols + 3` cycles after its last beat is accepted; row r
    follows r cycles later. Backpressure on `o` freezes the whole array (one clock enable), so cycle
    counts are in cycles where `o` is not stalled; input gaps (valid low) are bubbles, not stalls.
    """

    def __init__(self, params: HardwareParams):
        self.params = params
        super().__init__({
            "i": In(stream.Signature(operand_layout(params))),
            "o": Out(stream.Signature(result_row_layout(params))),
        })

    def elaborate(self, platform):
        p = self.params
        R, C, W = p.rows, p.cols, p.acc_bits
        m = Module()

        # Everything advances only when the output register can move.
        en = Signal()
        m.d.comb += en.eq(~self.o.valid | self.o.ready)

        # Spacing of tile ends: `since_last` counts enabled cycles since the previous last beat.
        spacing = p.min_tile_cycles
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
        def delay(value, n, name):
            for stage in range(n):
                reg = Signal.like(value, name=f"{name}_d{stage}")
                with m.If(en):
                    m.d.sync += reg.eq(value)
                value = reg
            return value

        row_a, row_v, row_l = [], [], []
        for i in range(R):
            row_a.append(delay(self.i.p.a[i], i, f"skew_a{i}"))
            row_v.append(delay(take, i, f"skew_v{i}"))
            row_l.append(delay(self.i.p.last, i, f"skew_l{i}"))
        col_b = [delay(self.i.p.b[j], j, f"skew_b{j}") for j in range(C)]

        # PE grid. a/valid/last travel right, b travels down; each PE registers its operands, then
        # the product, then accumulates; on `last` it also writes the final sum to `res`.
        res = [[None] * C for _ in range(R)]
        done = [None] * R
        b_in = list(col_b)
        for i in range(R):
            a_in, v_in, l_in = row_a[i], row_v[i], row_l[i]
            for j in range(C):
                a_r = Signal(signed(8), name=f"pe{i}_{j}_a")
                b_r = Signal(signed(8), name=f"pe{i}_{j}_b")
                v_r = Signal(name=f"pe{i}_{j}_v")
                l_r = Signal(name=f"pe{i}_{j}_l")
                prod = Signal(signed(16), name=f"pe{i}_{j}_prod")
                pv = Signal(name=f"pe{i}_{j}_pv")
                pl = Signal(name=f"pe{i}_{j}_pl")
                acc = Signal(signed(W), name=f"pe{i}_{j}_acc")
                fresh = Signal(init=1, name=f"pe{i}_{j}_fresh")  # next valid product starts a tile
                r = Signal(signed(W), name=f"pe{i}_{j}_res")
                total = Signal(signed(W), name=f"pe{i}_{j}_sum")
                m.d.comb += total.eq((acc + prod)[:W].as_signed())
                with m.If(en):
                    m.d.sync += [
                        a_r.eq(a_in), b_r.eq(b_in[j]), v_r.eq(v_in), l_r.eq(l_in),
                        prod.eq(a_r * b_r), pv.eq(v_r), pl.eq(v_r & l_r),
                    ]
                    with m.If(pv):
                        m.d.sync += fresh.eq(pl)
                        with m.If(fresh):
                            m.d.sync += acc.eq(prod)
                        with m.Else():
                            m.d.sync += acc.eq(total)
                        with m.If(pl):
                            m.d.sync += r.eq(Mux(fresh, prod, total))
                res[i][j] = r
                a_in, v_in, l_in = a_r, v_r, l_r
                b_in[j] = b_r
                if j == C - 1:
                    d = Signal(name=f"row{i}_done")
                    with m.If(en):
                        m.d.sync += d.eq(pl)
                    done[i] = d

        # Drain: row r is complete the cycle after its last column captured; tiles end >= rows
        # cycles apart, so at most one row is done per cycle.
        with m.If(en):
            m.d.sync += self.o.valid.eq(0)
            for i in range(R):
                with m.If(done[i]):
                    m.d.sync += [
                        self.o.valid.eq(1),
                        self.o.p.last.eq(i == R - 1),
                    ]
                    m.d.sync += [self.o.p.c[j].eq(res[i][j]) for j in range(C)]
        return m

