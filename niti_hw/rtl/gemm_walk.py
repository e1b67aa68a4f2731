"""A GEMM operand's address generator: the bank word of every value of A (or B) in the order the
array takes them, one a cycle, as `niti_hw.program.addressing` and the reference machine's
`_operand_a` / `_operand_b` define them: row-major, transposed, or im2col windows of the current
convolution geometry (the host neither transposes nor unfolds anything).

Positions are counters stepped by additions (a window's (n, oh, ow), a depth's (kh, kw, c), a
stride's offset), so the walk needs no division; only the im2col word address multiplies, a
product a pipeline stage.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, Value, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from niti_hw.params import HardwareParams
from niti_hw.perf.timing import GEMM_IM2COL_STAGES, gemm_beat_slots
from niti_hw.program.isa import TENSOR_FIELDS, Layout
from niti_hw.rtl.banks import word_bits
from niti_hw.rtl.instruction import geometry_layout

DIM_BITS = dict(TENSOR_FIELDS)["m"]
ADDRESS = unsigned(dict(TENSOR_FIELDS)["a_base"] + 1)
"""A word address (a base plus an offset inside its bank, one bit to spare for the sum)."""
PERIOD_BITS = 2 * DIM_BITS


def element_layout(p: HardwareParams) -> data.StructLayout:
    """One walked value: its word (`addr`, read only when not `zero`), the beat's last slot, the
    tile's last slot."""
    return data.StructLayout({"valid": 1, "addr": ADDRESS, "zero": 1, "beat_last": 1,
                              "tile_last": 1})


class _Position:
    """A position along one dimension in three copies: `cur` (this slot's), `start` (the tile's
    first, restored at every beat) and `nxt` (one array width further, for the next tile). Each
    field is a register; `step` gives the position one element on."""

    def __init__(self, name: str, fields: dict, step):
        self.fields = fields
        self.cur = {f: Signal(shape, name=f"{name}_{f}") for f, shape in fields.items()}
        self.start = {f: Signal(shape, name=f"{name}_start_{f}") for f, shape in fields.items()}
        self.nxt = {f: Signal(shape, name=f"{name}_next_{f}") for f, shape in fields.items()}
        self.stepped = step(self.cur)

    def drive(self, m: Module, own, events) -> None:
        """As the operand's own dimension (`own`): step each slot, restore at each beat, at a
        new tile advance (or reset, or restore); else as the reduction dimension: step each beat,
        reset at a new tile."""
        cur, start, nxt = self.cur, self.start, self.nxt

        def assign(target, source):
            return [target[f].eq(source[f] if isinstance(source, dict) else source)
                    for f in self.fields]
        with m.If(events["load"]):
            m.d.sync += assign(cur, 0) + assign(start, 0)
        with m.Elif(events["tile"]):
            with m.If(own & events["advance"] & events["capture"]):  # K = 1: captured now
                m.d.sync += assign(cur, self.stepped) + assign(start, self.stepped)
            with m.Elif(own & events["advance"]):
                m.d.sync += assign(cur, nxt) + assign(start, nxt)
            with m.Elif(own & events["keep"]):
                m.d.sync += assign(cur, start)
            with m.Else():
                m.d.sync += assign(cur, 0) + assign(start, 0)
        with m.Elif(own & events["beat"]):
            m.d.sync += assign(cur, start)
        with m.Elif(Mux(own, events["slot"], events["beat"])):
            m.d.sync += assign(cur, self.stepped)
        with m.If(own & events["capture"]):
            m.d.sync += assign(nxt, self.stepped)


class OperandWalk(wiring.Component):
    """The words of operand `role` ("a": A, M x K; "b": B, K x N) of a GEMM, in the array's order.

    Walk: output tiles of rows x cols, row tiles outer, column tiles inner; per tile K beats
    (k = 0..K-1) of `gemm_beat_slots` slots; slot t of beat k is A[i0 + t, k] (B[k, j0 + t]).
    `zero` (no read, the value 0) marks a slot past the array's rows (cols), past M (N), or in an
    im2col window's padding. A tile's K * slots values come on consecutive cycles; tiles start
    `period` (>= K * slots) cycles apart.

    Inputs are read at `start` and after (held for the instruction): `layout` (`Layout`; B takes
    ROWS or TRANSPOSED), `base`, `own` (M for A, N for B), `k`, `other` (N for A, M for B), `conv`.

    Timing: element e of tile t is on `o` `GEMM_ADDRESS_LATENCY` + t * period + e cycles after
    `start` (the counters' load, `GEMM_IM2COL_STAGES`, then the address register); one element per
    cycle.
    """

    def __init__(self, params: HardwareParams, role: str):
        if role not in ("a", "b"):
            raise ValueError(f"an operand walk is of A or B; got {role!r}")
        self.params, self.role = params, role
        super().__init__({
            "start": In(1), "layout": In(2), "base": In(ADDRESS), "own": In(DIM_BITS),
            "k": In(DIM_BITS), "other": In(DIM_BITS), "period": In(PERIOD_BITS),
            "conv": In(geometry_layout()), "o": Out(element_layout(params)),
        })

    def elaborate(self, platform):
        p = self.params
        slots = gemm_beat_slots(p)
        width, other_width = (p.rows, p.cols) if self.role == "a" else (p.cols, p.rows)
        m = Module()
        walking = Signal()
        phase = Signal(PERIOD_BITS)
        t = Signal(range(slots))
        kk = Signal(DIM_BITS)
        own0 = Signal(DIM_BITS)  # the tile's first own index (i0 or j0)
        other0 = Signal(DIM_BITS)
        emit = Signal()
        gathering, last_phase = Signal(PERIOD_BITS), Signal(PERIOD_BITS)  # from the held inputs
        last_k = Signal(DIM_BITS)  # k - 1, from the held inputs
        # phase < gathering and phase == last_phase, kept beside the phase counter (set for the
        # phase it moves to), so no compare lies in front of the events
        before_gathered, closing = Signal(), Signal()
        m.d.comb += emit.eq(walking & before_gathered)
        beat_end = emit & (t == slots - 1)
        tile = walking & closing
        own_last = own0 + width >= self.own
        other_last = other0 + other_width >= self.other
        inner_last = own_last if self.role == "b" else other_last
        # Row tiles outer: A's own tile moves when the column tiles wrap, B's at every tile
        # (back to 0 when they wrap).
        advance = inner_last if self.role == "a" else ~inner_last
        keep = ~inner_last if self.role == "a" else 0
        events = {"load": self.start, "tile": tile, "advance": advance, "keep": keep,
                  "beat": beat_end & (kk != last_k), "slot": emit & ~beat_end,
                  "capture": emit & (t == width - 1)}

        with m.If(self.start):
            m.d.sync += [walking.eq(1), phase.eq(0), t.eq(0), kk.eq(0), own0.eq(0), other0.eq(0),
                         gathering.eq(self.k * slots), last_phase.eq(self.period - 1),
                         last_k.eq(self.k - 1), before_gathered.eq(self.k != 0),
                         closing.eq(self.period == 1)]
        with m.Elif(walking):
            m.d.sync += [phase.eq(Mux(tile, 0, phase + 1)),
                         before_gathered.eq(Mux(tile, gathering != 0, phase + 1 < gathering)),
                         closing.eq(Mux(tile, last_phase == 0, phase + 1 == last_phase))]
            with m.If(emit):
                m.d.sync += t.eq(Mux(beat_end, 0, t + 1))
            with m.If(tile):
                m.d.sync += kk.eq(0)
                self._next_tile(m, own0, other0, own_last, other_last, width, other_width,
                                walking)
            with m.Elif(beat_end):
                m.d.sync += kk.eq(kk + 1)

        layout = Signal(2)
        m.d.comb += layout.eq(self.layout)
        # The own dimension's stride: "own-major" storage (A ROWS, B TRANSPOSED) steps K per own
        # element and 1 per k; the other (A TRANSPOSED, B ROWS) 1 per own element, `own` per k.
        own_major = layout == (Layout.ROWS if self.role == "a" else Layout.TRANSPOSED)
        own_off = _Position("own_off", {"v": ADDRESS},
                            lambda c: {"v": c["v"] + Mux(own_major, self.k, 1)})
        k_off = _Position("k_off", {"v": ADDRESS},
                          lambda c: {"v": c["v"] + Mux(own_major, 1, self.own)})
        own_off.drive(m, 1, events)
        k_off.drive(m, 0, events)
        element = Signal(element_layout(p))
        m.d.comb += [element.valid.eq(emit), element.addr.eq(self.base + own_off.cur["v"]
                                                               + k_off.cur["v"]),
                     element.zero.eq((t >= width) | (own0 + t >= self.own)),
                     element.beat_last.eq(beat_end),
                     element.tile_last.eq(beat_end & (kk == last_k))]
        if self.role == "a":
            element = self._im2col(m, layout, events, element)
        else:  # in step with A's im2col stages
            for _ in range(GEMM_IM2COL_STAGES):
                delayed = Signal.like(element)
                m.d.sync += delayed.eq(element)
                element = delayed
        m.d.sync += self.o.eq(element)
        return m

    def _next_tile(self, m, own0, other0, own_last, other_last, width, other_width, walking):
        """Row tiles outer, column tiles inner; the walk ends after the last tile."""
        rows0, cols0 = (own0, other0) if self.role == "a" else (other0, own0)
        rows_last, cols_last = (own_last, other_last) if self.role == "a" else \
            (other_last, own_last)
        with m.If(cols_last):
            m.d.sync += [cols0.eq(0), rows0.eq(rows0 + self.params.rows)]
            with m.If(rows_last):
                m.d.sync += walking.eq(0)
        with m.Else():
            m.d.sync += cols0.eq(cols0 + self.params.cols)

    def _im2col(self, m, layout, events, strided):
        """IM2COL (own: windows (n, oh, ow), k: depth (kh, kw, c)) and IM2COL_TRANSPOSED (the
        two swapped): the word of input (n, oh*stride + kh - padding, ow*stride + kw - padding, c)
        of the NHWC source, `zero` where that falls in the padding; `strided` (the element of
        the other layouts) otherwise. `GEMM_IM2COL_STAGES` cycles: a product and a sum a stage."""
        g = self.conv
        dim = unsigned(DIM_BITS)
        # Each dimension's last index, a cycle behind the geometry register (latched by an
        # instruction before this one), so a step compares and adds, no subtraction before.
        last = {name: Signal(dim, name=f"last_{name}")
                for name in ("out_width", "out_height", "channels", "kernel_w")}
        m.d.sync += [last[name].eq(g[name] - 1) for name in last]

        def window_step(c):
            ow_end, oh_end = c["ow"] == last["out_width"], c["oh"] == last["out_height"]
            return {"ow": Mux(ow_end, 0, c["ow"] + 1),
                    "ows": Mux(ow_end, 0, c["ows"] + g.stride),
                    "oh": Mux(ow_end, Mux(oh_end, 0, c["oh"] + 1), c["oh"]),
                    "ohs": Mux(ow_end, Mux(oh_end, 0, c["ohs"] + g.stride), c["ohs"]),
                    "n": Mux(ow_end & oh_end, c["n"] + 1, c["n"])}

        def depth_step(c):
            c_end, kw_end = c["c"] == last["channels"], c["kw"] == last["kernel_w"]
            return {"c": Mux(c_end, 0, c["c"] + 1),
                    "kw": Mux(c_end, Mux(kw_end, 0, c["kw"] + 1), c["kw"]),
                    "kh": Mux(c_end & kw_end, c["kh"] + 1, c["kh"])}

        window = _Position("window", {"n": dim, "oh": dim, "ohs": dim, "ow": dim, "ows": dim},
                           window_step)
        depth = _Position("depth", {"kh": dim, "kw": dim, "c": dim}, depth_step)
        window.drive(m, layout == Layout.IM2COL, events)
        depth.drive(m, layout == Layout.IM2COL_TRANSPOSED, events)
        w, d = window.cur, depth.cur
        row = Signal(signed(DIM_BITS + 2))
        col = Signal(signed(DIM_BITS + 2))
        m.d.comb += [row.eq(w["ohs"] + d["kh"] - g.padding), col.eq(w["ows"] + d["kw"] - g.padding)]
        inside = (row >= 0) & (row < g.height) & (col >= 0) & (col < g.width)
        bits = word_bits(self.params)  # an inside word's offset lies in its bank: modulo 2**bits
        unfold = layout[1]  # IM2COL or IM2COL_TRANSPOSED
        element = Signal.like(strided)
        m.d.comb += [element.eq(strided), element.zero.eq(strided.zero | (unfold & ~inside))]
        acc, pending = w["n"], [row.as_unsigned(), col.as_unsigned(), d["c"]]
        factors = (g.height, g.width, g.channels)
        if len(factors) != GEMM_IM2COL_STAGES:
            raise RuntimeError("rtl/gemm_walk.py forms the im2col offset a product a stage: "
                               f"perf.timing's GEMM_IM2COL_STAGES must say {len(factors)}")
        for stage, factor in enumerate(factors):  # one MULT18X18D each
            product = Signal(bits, name=f"offset{stage}")
            later = [Signal.like(term, name=f"term{stage}_{n}") for n, term in
                     enumerate(pending[1:])]
            staged = Signal.like(element, name=f"element{stage}")
            m.d.sync += [product.eq((Value.cast(acc)[:bits] * factor + pending[0])[:bits]),
                         *[held.eq(term) for held, term in zip(later, pending[1:])],
                         staged.eq(element)]
            acc, pending, element = product, later, staged
        out = Signal.like(element)
        m.d.comb += [out.eq(element), out.addr.eq(Mux(unfold, self.base + acc, element.addr))]
        return out
