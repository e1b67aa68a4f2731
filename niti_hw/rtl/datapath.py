"""NITI on a whole tensor: GEMM -> B(tensor) -> k by the tensor's rule -> R(acc, k) in row-major order.

`Datapath` is the tensor datapath; `TrainingCore` adds the weight-update unit beside it, the top that
runs a training step and is synthesised.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from niti_hw.golden import INT8_MAX
from niti_hw.params import HardwareParams
from niti_hw.perf.timing import (ROW_WRITE_LATENCY, SCRATCHPAD_READ_LATENCY, TENSOR_CFG_FIELDS,
                                 TENSOR_DIM_BITS)
from niti_hw.rtl.bitwidth_detector import BitwidthDetector
from niti_hw.rtl.layouts import BITWIDTH, SHIFT, operand_layout, round_out_layout
from niti_hw.rtl.scratchpad import Scratchpad, check_scratchpad_params, element_bits
from niti_hw.rtl.shift_round import ShiftRound, low_mask
from niti_hw.rtl.systolic_array import SystolicArray
from niti_hw.rtl.target import LOCAL
from niti_hw.rtl.update_unit import WeightUpdate

INT8_BITS = INT8_MAX.bit_length()  # activations and errors keep 7 magnitude bits: k = max(0, B - 7)
RULE_NARROW, RULE_GRADIENT = 0, 1


def tensor_cfg_layout() -> data.StructLayout:
    """One tensor: output shape m x n, k rule (narrow: max(0, B - 7); gradient: B - m_u, 0 when
    B <= m_u), m_u, and the order of its tiles (`niti_hw.perf.tiling.TileWalk`: bands of `band`
    tile rows cut into blocks of `block` tile columns, 0 the whole tensor; both 0 is row-major)."""
    return data.StructLayout({name: unsigned(bits) for name, bits in TENSOR_CFG_FIELDS.items()})


def status_layout() -> data.StructLayout:
    """What the host reads after a tensor: refused (too large for the scratchpad, or empty),
    no_update (gradient rule and B = 0: SPEC skips the update), B and the k applied."""
    return data.StructLayout({
        "refused": 1,
        "no_update": 1,
        "b": BITWIDTH,
        "k": SHIFT,
    })


class Datapath(wiring.Component):
    """SystolicArray -> Scratchpad + BitwidthDetector over the whole tensor -> ShiftRound replay.

    Per tensor the host sends one `cfg` beat, then the GEMM's operand beats in the SystolicArray
    protocol (tiles in the cfg's `TileWalk` order, `niti_hw.perf.tiling.tile_grid`; edge tiles
    zero-padded). Every drained row is written,
    cropped, into the scratchpad at its row-major place and ORed into the detector; after the last
    tile, k follows from B by the cfg's rule and the whole tensor is replayed in row-major order
    through one ShiftRound, `lanes` elements per beat (`keep` marks the final partial beat, `last`
    ends the tensor), so stochastic rounding draws LFSR lanes exactly as the golden model does for
    any n. Every beat carries the k applied: the tensor's exponent grows by k once.

    A cfg with m*n above `tensor_buffer_words` (or m or n zero) is refused: `status.refused` rises,
    no operand is taken, and the unit waits for the next cfg. `status` holds B, k and no_update of the
    last tensor until the next cfg. A cfg is taken only between tensors; operands only during the
    GEMM phase. Cycle counts (no gaps, no backpressure) are `niti_hw.perf.timing.tensor_gemm_cycles`
    and its phase pieces; the array is never stalled, as the scratchpad takes a row per cycle.
    """

    def __init__(self, params: HardwareParams):
        check_scratchpad_params(params)
        self.params = params
        super().__init__({
            "cfg": In(stream.Signature(tensor_cfg_layout())),
            "i": In(stream.Signature(operand_layout(params))),
            "o": Out(stream.Signature(round_out_layout(params))),
            "status": Out(status_layout()),
        })

    def elaborate(self, platform):
        p = self.params
        R, C, L = p.rows, p.cols, p.lanes
        m = Module()
        m.submodules.array = array = SystolicArray(p, backpressure=False)  # the pad takes every row
        # The detector sees a whole array row per cycle.
        m.submodules.detector = detector = BitwidthDetector(p.replace(lanes=C, lfsr_lanes=C))
        m.submodules.pad = pad = Scratchpad(p)
        m.submodules.rounder = rounder = ShiftRound(p)

        dim = TENSOR_DIM_BITS
        cm, cn = Signal(dim), Signal(dim)
        rule, mu = Signal(), Signal(TENSOR_CFG_FIELDS["m_u"])
        size = Signal(2 * dim)  # m * n
        refuse, one_beat = Signal(), Signal()  # from size: above the scratchpad or empty; <= lanes
        mul_m, mul_n, mul_step = Signal(dim), Signal(2 * dim), Signal(range(dim))
        block_step = Signal(2 * dim)  # rows * n: elements from one row block to the next
        last_beat = Signal(element_bits(p))  # final replay beat: ceil(m * n / lanes) - 1
        final_keep = Signal(L)
        # k is computed once, beside the detector, into tensor_k; as the replay starts it is copied
        # to the rounder's k and to status.k (the first beat reaches the rounder two cycles
        # later). The copies are plain register-to-register routes to places far apart, and no
        # twin registers for synthesis to merge.
        tensor_k, k = Signal(SHIFT), Signal(SHIFT)
        status = self.status

        # Operand side: which tile the incoming beats belong to (the tensor's rows and columns
        # from that tile on); stop after the last one.
        # "Last tile column / row" are flags registered beside the counts (no compare between a
        # count and the counters it updates).
        in_m_left, in_n_left = Signal(dim), Signal(dim)
        in_last_col, in_last_row = Signal(), Signal()  # in_n_left <= C, in_m_left <= R
        cm_fits, cn_fits = Signal(), Signal()  # m <= R, n <= C: one tile row / column
        accepting = Signal()  # GEMM phase with operands still due (a register: no state decode)
        m.d.comb += [
            array.i.valid.eq(self.i.valid & accepting),
            array.i.p.eq(self.i.p),
            self.i.ready.eq(array.i.ready & accepting),
        ]
        with m.If(self.i.valid & self.i.ready & self.i.p.last):
            with m.If(in_last_col):
                m.d.sync += [in_n_left.eq(cn), in_last_col.eq(cn_fits)]
                with m.If(in_last_row):
                    m.d.sync += accepting.eq(0)
                with m.Else():
                    m.d.sync += [in_m_left.eq(in_m_left - R), in_last_row.eq(in_m_left <= 2 * R)]
            with m.Else():
                m.d.sync += [in_n_left.eq(in_n_left - C), in_last_col.eq(in_n_left <= 2 * C)]

        # Drain side: the place of each drained row in the tensor, registered with the row, as the
        # tiles come in the cfg's walk: across a column block, down the band's tile rows, to the
        # next column block, to the next band. Tile, block and band ends are read from what is
        # left (a compare with a constant, registered beside the count) and every start element
        # is kept in its own register, so no adder feeds a compare.
        i0, row_i = Signal(dim), Signal(dim)  # the tile's first row, the drained row
        block_e, tile_e, row_e = Signal(2 * dim), Signal(2 * dim), Signal(2 * dim)  # i0 * n, tile, row
        cb_e = Signal(2 * dim)  # the column block's first element in this tile row
        m_left, n_left = Signal(dim), Signal(dim)  # rows and columns of the tensor from this tile on
        last_col, last_row = Signal(), Signal()  # n_left <= C, m_left <= R, registered beside them
        # At the band's first tile row, and at the column block's first tile column:
        band_i0, band_m_left, band_last_row = Signal(dim), Signal(dim), Signal()
        band_e, top_e = Signal(2 * dim), Signal(2 * dim)  # band_i0 * n, the block's top-left
        cb_n_left, cb_last_col = Signal(dim), Signal()
        # Tile columns left in the block and tile rows left in the band, minus one, counted down
        # from the cfg's block - 1 and band - 1 (0, the whole tensor, wraps to a count no tensor
        # of fewer than 2**dim rows or columns reaches); `*_end` marks the last.
        band_m1, block_m1 = Signal(dim), Signal(dim)
        tiles_left, rows_left = Signal(dim), Signal(dim)
        block_end, band_end = Signal(), Signal()
        block_elems = Signal(2 * dim)  # block * C: from one column block to the next
        block_one, band_one = Signal(), Signal()  # block == 1, band == 1
        # What a move would load, registered every cycle from the place it moves from: a tile
        # drains `rows` >= 2 rows, so the place is at least a cycle old when the next move reads
        # these, and no adder or compare sits before the moves' muxes.
        col_then_last, row_then_last = Signal(), Signal()  # n_left - C <= C, m_left - R <= R
        block_then_ends, band_then_ends = Signal(), Signal()  # tiles_left == 1, rows_left == 1
        right_e, down_e = Signal(2 * dim), Signal(2 * dim)  # tile_e + C, block_e + rows * n
        down_cb_e, next_top_e = Signal(2 * dim), Signal(2 * dim)  # cb_e + rows * n, the next block
        i0_down, m_down, n_right = Signal(dim), Signal(dim), Signal(dim)  # i0 + R, m - R, n - C
        tiles_dec, rows_dec = Signal(dim), Signal(dim)
        m.d.sync += [col_then_last.eq(n_left <= 2 * C), row_then_last.eq(m_left <= 2 * R),
                     block_then_ends.eq(tiles_left == 1), band_then_ends.eq(rows_left == 1),
                     right_e.eq(tile_e + C), down_e.eq(block_e + block_step),
                     down_cb_e.eq(cb_e + block_step), next_top_e.eq(top_e + block_elems),
                     i0_down.eq(i0 + R), m_down.eq(m_left - R), n_right.eq(n_left - C),
                     tiles_dec.eq(tiles_left - 1), rows_dec.eq(rows_left - 1)]
        w_row = Signal.like(array.o.p.c, reset_less=True)
        w_valid, w_last, w_e0 = Signal(), Signal(), Signal(2 * dim, reset_less=True)
        w_count = Signal(range(C + 1), reset_less=True)
        m.d.comb += array.o.ready.eq(1)
        # ROW_WRITE_LATENCY - 1 plain registers between the array's output and the control below
        # (the array and the scratchpad sit far apart on the die), then the w_ registers. The
        # row's flags travel twice, one copy for the w_ registers and one for the tile counters,
        # so each can be placed beside what it drives.
        def drained(value, name, reset_less=False, attrs=None):
            for stage in range(ROW_WRITE_LATENCY - 1):
                reg = Signal.like(value, name=f"{name}{stage}", reset_less=reset_less,
                                  attrs=attrs or {})
                m.d.sync += reg.eq(value)
                value = reg
            return value

        row_data = drained(array.o.p.c, "drain_row", reset_less=True)
        row_valid = drained(array.o.valid, "drain_valid", attrs=LOCAL)
        row_last = drained(array.o.p.last, "drain_last", attrs=LOCAL)
        tile_valid = drained(array.o.valid, "tile_valid", attrs=LOCAL)
        tile_last = drained(array.o.p.last, "tile_last", attrs=LOCAL)
        m.d.sync += [  # every cycle, read only beside w_valid: the row's valid is no clock enable
            w_valid.eq(row_valid),
            w_row.eq(row_data),
            w_e0.eq(row_e),
            w_count.eq(Mux(row_i < cm, Mux(last_col, n_left, C), 0)),
            w_last.eq(row_last & last_col & last_row),  # the walk's last tile is the corner one
        ]

        def next_tile_row(n_from, last_col_from):  # the next tile row, at column `n_from` left
            m.d.sync += [i0.eq(i0_down), row_i.eq(i0_down), m_left.eq(m_down),
                         last_row.eq(row_then_last), block_e.eq(down_e),
                         n_left.eq(n_from), last_col.eq(last_col_from),
                         tiles_left.eq(block_m1), block_end.eq(block_one)]

        with m.If(tile_valid):
            with m.If(~tile_last):
                m.d.sync += [row_i.eq(row_i + 1), row_e.eq(row_e + cn)]
            with m.Elif(~(last_col | block_end)):  # next tile of the block's tile row
                m.d.sync += [row_i.eq(i0), n_left.eq(n_right), last_col.eq(col_then_last),
                             tile_e.eq(right_e), row_e.eq(right_e),
                             tiles_left.eq(tiles_dec), block_end.eq(block_then_ends)]
            with m.Elif(~(last_row | band_end)):  # the block's next tile row in this band
                next_tile_row(cb_n_left, cb_last_col)
                m.d.sync += [cb_e.eq(down_cb_e), tile_e.eq(down_cb_e), row_e.eq(down_cb_e),
                             rows_left.eq(rows_dec), band_end.eq(band_then_ends)]
            with m.Elif(~last_col):  # the next column block, from the band's first tile row
                m.d.sync += [i0.eq(band_i0), row_i.eq(band_i0), m_left.eq(band_m_left),
                             last_row.eq(band_last_row), block_e.eq(band_e),
                             n_left.eq(n_right), last_col.eq(col_then_last),
                             cb_n_left.eq(n_right), cb_last_col.eq(col_then_last),
                             top_e.eq(next_top_e), cb_e.eq(next_top_e),
                             tile_e.eq(next_top_e), row_e.eq(next_top_e),
                             tiles_left.eq(block_m1), block_end.eq(block_one),
                             rows_left.eq(band_m1), band_end.eq(band_one)]
            with m.Else():  # the next band, from the first column
                next_tile_row(cn, cn_fits)
                m.d.sync += [band_i0.eq(i0_down), band_m_left.eq(m_down),
                             band_last_row.eq(row_then_last), band_e.eq(down_e),
                             cb_n_left.eq(cn), cb_last_col.eq(cn_fits),
                             top_e.eq(down_e), cb_e.eq(down_e), tile_e.eq(down_e), row_e.eq(down_e),
                             rows_left.eq(band_m1), band_end.eq(band_one)]
        m.d.comb += [
            pad.wr_en.eq(w_valid), pad.wr_e0.eq(w_e0), pad.wr_count.eq(w_count),
            pad.wr_row.eq(w_row),
            detector.i.valid.eq(w_valid), detector.i.p.last.eq(w_last), detector.o.ready.eq(1),
        ]
        for col in range(C):
            m.d.comb += detector.i.p.data[col].eq(w_row[col])

        # Replay: reads issued SCRATCHPAD_READ_LATENCY beats ahead of the rounder's input; the read
        # pipeline and its valid/last flags advance together, and freeze while the rounder stalls.
        rd_beat, replay = Signal(element_bits(p)), Signal()
        at_last = Signal()  # rd_beat == last_beat, kept beside rd_beat: no compare when issuing
        last_but_one = Signal(element_bits(p))  # last_beat - 1, set while the GEMM runs
        rd_valid = [Signal(name=f"rd_valid{n}") for n in range(SCRATCHPAD_READ_LATENCY)]
        rd_last = [Signal(name=f"rd_last{n}") for n in range(SCRATCHPAD_READ_LATENCY)]
        # The read enable reaches every block RAM, far from the replay counters: it has a net and
        # a copy of the last valid flag of its own, so each can be placed beside what it drives.
        ram_valid = Signal(name="ram_valid")  # rd_valid[-1] again, for the RAMs
        advance, ram_advance = Signal(), Signal()
        issue = Signal()
        m.d.comb += [
            advance.eq(~rd_valid[-1] | rounder.i.ready),
            ram_advance.eq(~ram_valid | rounder.i.ready),
            issue.eq(replay & advance),
            pad.rd_en.eq(ram_advance),
            pad.rd_beat.eq(rd_beat),
            rounder.i.valid.eq(rd_valid[-1]),
            rounder.i.p.data.eq(pad.rd_data),
            rounder.i.p.k.eq(k),
            rounder.i.p.keep.eq(Mux(rd_last[-1], final_keep, (1 << L) - 1)),
            rounder.i.p.last.eq(rd_last[-1]),
        ]
        with m.If(advance):
            m.d.sync += [rd_valid[0].eq(issue), rd_last[0].eq(issue & at_last)]
            m.d.sync += [rd_valid[n].eq(rd_valid[n - 1]) for n in range(1, len(rd_valid))]
            m.d.sync += [rd_last[n].eq(rd_last[n - 1]) for n in range(1, len(rd_last))]
        with m.If(ram_advance):
            m.d.sync += ram_valid.eq(rd_valid[-2])
        with m.If(issue):
            m.d.sync += [rd_beat.eq(rd_beat + 1), at_last.eq(rd_beat == last_but_one)]
        wiring.connect(m, rounder.o, wiring.flipped(self.o))

        keep_bits = Signal.like(mu, name="keep_bits")  # m_u or 7 by the rule: k = max(0, B - it)
        b = detector.o.payload
        # `idle` mirrors the IDLE state as a register: a comb decode of a state that has not yet
        # changed is never evaluated by Icarus and would read as X.
        idle = Signal(init=1)
        m.d.comb += self.cfg.ready.eq(idle)
        with m.FSM():
            with m.State("IDLE"):
                with m.If(self.cfg.valid):
                    m.d.sync += idle.eq(0)
                    m.d.sync += [cm.eq(self.cfg.p.m), cn.eq(self.cfg.p.n), rule.eq(self.cfg.p.rule),
                                 mu.eq(self.cfg.p.m_u), status.eq(0),
                                 band_m1.eq(self.cfg.p.band - 1), block_m1.eq(self.cfg.p.block - 1),
                                 size.eq(Mux(self.cfg.p.m[0], self.cfg.p.n, 0)),
                                 mul_m.eq(self.cfg.p.m >> 1), mul_n.eq(self.cfg.p.n << 1),
                                 mul_step.eq(0)]
                    m.next = "SIZE"
            with m.State("SIZE"):
                # size = m * n, one shift-add step per bit of m (no DSP): bit 0 came with the cfg,
                # bits 1.. take dim - 1 steps, so in the last step size is final and only the
                # compares below, registered every step, read it.
                with m.If(mul_m[0]):
                    m.d.sync += size.eq(size + mul_n)
                m.d.sync += [
                    refuse.eq((cm == 0) | (cn == 0) | (size > p.tensor_buffer_words)),
                    one_beat.eq(size <= L),
                    mul_m.eq(mul_m >> 1), mul_n.eq(mul_n << 1), mul_step.eq(mul_step + 1),
                    block_step.eq(cn * R), cm_fits.eq(cm <= R), cn_fits.eq(cn <= C),
                    block_elems.eq((block_m1 + 1) * C),
                    block_one.eq(block_m1 == 0), band_one.eq(band_m1 == 0),
                    keep_bits.eq(Mux(rule, mu, INT8_BITS)),
                ]
                with m.If(mul_step == dim - 1):
                    m.next = "CHECK"
            with m.State("CHECK"):
                # The counters are loaded whether or not the tensor is refused (a refused tensor
                # never reads them): the registered refusal selects only the state and status.
                m.d.sync += [
                    last_beat.eq((size - 1) >> (L.bit_length() - 1)),
                    final_keep.eq(low_mask((size - 1)[:L.bit_length() - 1] + 1, L)),
                    in_m_left.eq(cm), in_n_left.eq(cn),
                    in_last_row.eq(cm_fits), in_last_col.eq(cn_fits),
                    i0.eq(0), row_i.eq(0), block_e.eq(0), tile_e.eq(0), row_e.eq(0), cb_e.eq(0),
                    m_left.eq(cm), n_left.eq(cn), last_row.eq(cm_fits), last_col.eq(cn_fits),
                    band_i0.eq(0), band_m_left.eq(cm), band_last_row.eq(cm_fits), band_e.eq(0),
                    top_e.eq(0), cb_n_left.eq(cn), cb_last_col.eq(cn_fits),
                    tiles_left.eq(block_m1), block_end.eq(block_one),
                    rows_left.eq(band_m1), band_end.eq(band_one),
                    rd_beat.eq(0), at_last.eq(one_beat),
                ]
                with m.If(refuse):
                    m.d.sync += [status.refused.eq(1), idle.eq(1)]
                    m.next = "IDLE"
                with m.Else():
                    m.d.sync += accepting.eq(1)
                    m.next = "GEMM"
            with m.State("GEMM"):
                m.d.sync += last_but_one.eq(last_beat - 1)
                with m.If(detector.o.valid):
                    m.d.sync += [
                        status.b.eq(b), tensor_k.eq(Mux(b > keep_bits, b - keep_bits, 0)),
                        status.no_update.eq(rule & (b == 0)),
                    ]
                    m.next = "REPLAY"
            with m.State("REPLAY"):
                m.d.comb += replay.eq(1)
                m.d.sync += [k.eq(tensor_k), status.k.eq(tensor_k)]
                with m.If(issue & at_last):
                    m.d.sync += idle.eq(1)
                    m.next = "IDLE"
        return m


class TrainingCore(wiring.Component):
    """The tensor `Datapath` (cfg, i, o, status) and a `WeightUpdate` of `weight_bits` (u_i, u_o)
    side by side: every GEMM, rounding and weight update of a NITI training step."""

    def __init__(self, params: HardwareParams, weight_bits: int):
        self.params, self.weight_bits = params, weight_bits
        self._datapath = Datapath(params)
        self._update = WeightUpdate(params, weight_bits)
        members = dict(self._datapath.signature.members)
        members["u_i"] = self._update.signature.members["i"]
        members["u_o"] = self._update.signature.members["o"]
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        m.submodules.datapath = dp = self._datapath
        m.submodules.update = up = self._update
        for name in ("cfg", "i"):
            wiring.connect(m, wiring.flipped(getattr(self, name)), getattr(dp, name))
        wiring.connect(m, dp.o, wiring.flipped(self.o))
        m.d.comb += self.status.eq(dp.status)
        wiring.connect(m, wiring.flipped(self.u_i), up.i)
        wiring.connect(m, up.o, wiring.flipped(self.u_o))
        return m

