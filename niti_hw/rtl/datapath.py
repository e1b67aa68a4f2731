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
from niti_hw.perf.timing import ROW_WRITE_LATENCY, SCRATCHPAD_READ_LATENCY, TENSOR_DIM_BITS
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
    B <= m_u) and m_u."""
    return data.StructLayout({
        "m": unsigned(TENSOR_DIM_BITS),
        "n": unsigned(TENSOR_DIM_BITS),
        "rule": 1,
        "m_u": unsigned(4),
    })


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
    protocol (tiles in `rtl/protocol.py` order, edge tiles zero-padded). Every drained row is written,
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
        m = Module()
        m.submodules.array = array = SystolicArray(p, backpressure=False)  # the pad takes every row
        # The detector sees a whole array row per cycle.
        row = p.replace(lanes=p.cols, lfsr_lanes=p.cols)
        m.submodules.detector = detector = BitwidthDetector(row)
        m.submodules.pad = pad = Scratchpad(p)
        m.submodules.rounder = rounder = ShiftRound(p)
        size = _SizeCheck(m, p)
        operands = _OperandGate(m, p, self.i, array.i, size)
        drain = _DrainWriter(m, p, array.o, pad, detector.i, size)
        replay = _Replay(m, p, pad, rounder.i)
        wiring.connect(m, rounder.o, wiring.flipped(self.o))

        # k is computed once, beside the detector, into tensor_k; as the replay starts it is copied
        # to the rounder's k and to status.k (the first beat reaches the rounder two cycles
        # later). The copies are plain register-to-register routes to places far apart, and no
        # twin registers for synthesis to merge.
        tensor_k, k = Signal(SHIFT), Signal(SHIFT)
        m.d.comb += [rounder.i.p.k.eq(k), detector.o.ready.eq(1)]
        status, b = self.status, detector.o.payload
        # `idle` mirrors the IDLE state as a register: a comb decode of a state that has not yet
        # changed is never evaluated by Icarus and would read as X.
        idle = Signal(init=1)
        m.d.comb += self.cfg.ready.eq(idle)
        with m.FSM():
            with m.State("IDLE"):
                with m.If(self.cfg.valid):
                    m.d.sync += [idle.eq(0), status.eq(0), *size.take(self.cfg.p)]
                    m.next = "SIZE"
            with m.State("SIZE"):
                m.d.sync += size.step()
                with m.If(size.last_step):
                    m.next = "CHECK"
            with m.State("CHECK"):
                # The counters are loaded whether or not the tensor is refused (a refused tensor
                # never reads them): the registered refusal selects only the state and status.
                m.d.sync += [*replay.load(size), *operands.load(size), *drain.load(size)]
                with m.If(size.refuse):
                    m.d.sync += [status.refused.eq(1), idle.eq(1)]
                    m.next = "IDLE"
                with m.Else():
                    m.d.sync += operands.start()
                    m.next = "GEMM"
            with m.State("GEMM"):
                m.d.sync += replay.prepare()
                with m.If(detector.o.valid):
                    m.d.sync += [
                        status.b.eq(b), tensor_k.eq(Mux(b > size.keep_bits, b - size.keep_bits, 0)),
                        status.no_update.eq(size.rule & (b == 0)),
                    ]
                    m.next = "REPLAY"
            with m.State("REPLAY"):
                m.d.comb += replay.active.eq(1)
                m.d.sync += [k.eq(tensor_k), status.k.eq(tensor_k)]
                with m.If(replay.ends):
                    m.d.sync += idle.eq(1)
                    m.next = "IDLE"
        return m


class _SizeCheck:
    """The cfg's registers and what follows from m x n before any operand: refused (empty or above
    the scratchpad), one replay beat, the row-block stride, one tile row / column, the bits the
    rule keeps.

    size = m * n is one shift-add step per bit of m (no DSP): bit 0 comes with the cfg, bits 1..
    take TENSOR_DIM_BITS - 1 steps, so in the last step size is final and only the compares,
    registered every step, read it."""

    def __init__(self, m: Module, p: HardwareParams):
        dim = TENSOR_DIM_BITS
        self.m, self.p = m, p
        self.cm, self.cn = Signal(dim, name="cm"), Signal(dim, name="cn")
        self.rule, self.mu = Signal(name="rule"), Signal(4, name="mu")
        self.size = Signal(2 * dim, name="size")  # m * n
        # from size: above the scratchpad or empty; <= lanes
        self.refuse, self.one_beat = Signal(name="refuse"), Signal(name="one_beat")
        self.mul_m, self.mul_n = Signal(dim, name="mul_m"), Signal(2 * dim, name="mul_n")
        self.mul_step = Signal(range(dim), name="mul_step")
        self.block_step = Signal(2 * dim, name="block_step")  # rows * n: one row block to the next
        # m <= R, n <= C: one tile row / column
        self.cm_fits, self.cn_fits = Signal(name="cm_fits"), Signal(name="cn_fits")
        self.keep_bits = Signal.like(self.mu, name="keep_bits")  # m_u or 7: k = max(0, B - it)
        self.last_step = self.mul_step == dim - 1

    def take(self, cfg) -> list:
        """Statements that latch a cfg beat and set up the product's first step."""
        return [self.cm.eq(cfg.m), self.cn.eq(cfg.n), self.rule.eq(cfg.rule), self.mu.eq(cfg.m_u),
                self.size.eq(Mux(cfg.m[0], cfg.n, 0)),
                self.mul_m.eq(cfg.m >> 1), self.mul_n.eq(cfg.n << 1), self.mul_step.eq(0)]

    def step(self) -> list:
        """One shift-add step of m * n, and every flag registered from the operands of this step."""
        p, cm, cn = self.p, self.cm, self.cn
        with self.m.If(self.mul_m[0]):
            self.m.d.sync += self.size.eq(self.size + self.mul_n)
        return [
            self.refuse.eq((cm == 0) | (cn == 0) | (self.size > p.tensor_buffer_words)),
            self.one_beat.eq(self.size <= p.lanes),
            self.mul_m.eq(self.mul_m >> 1), self.mul_n.eq(self.mul_n << 1),
            self.mul_step.eq(self.mul_step + 1),
            self.block_step.eq(cn * p.rows), self.cm_fits.eq(cm <= p.rows),
            self.cn_fits.eq(cn <= p.cols), self.keep_bits.eq(Mux(self.rule, self.mu, INT8_BITS)),
        ]


class _OperandGate:
    """Operand side: which tile the incoming beats belong to (the tensor's rows and columns from
    that tile on); stops taking operands after the last one. "Last tile column / row" are flags
    registered beside the counts (no compare between a count and the counters it updates), and
    `accepting` is a register, so the operand handshake reads no state decode."""

    def __init__(self, m: Module, p: HardwareParams, i, array_i, size: _SizeCheck):
        R, C, dim = p.rows, p.cols, TENSOR_DIM_BITS
        self.in_m_left = in_m_left = Signal(dim, name="in_m_left")
        self.in_n_left = in_n_left = Signal(dim, name="in_n_left")
        # in_n_left <= C, in_m_left <= R
        self.in_last_col, self.in_last_row = Signal(name="in_last_col"), Signal(name="in_last_row")
        self.accepting = accepting = Signal(name="accepting")  # operands still due in the GEMM
        m.d.comb += [
            array_i.valid.eq(i.valid & accepting),
            array_i.p.eq(i.p),
            i.ready.eq(array_i.ready & accepting),
        ]
        with m.If(i.valid & i.ready & i.p.last):
            with m.If(self.in_last_col):
                m.d.sync += [in_n_left.eq(size.cn), self.in_last_col.eq(size.cn_fits)]
                with m.If(self.in_last_row):
                    m.d.sync += accepting.eq(0)
                with m.Else():
                    m.d.sync += [in_m_left.eq(in_m_left - R),
                                 self.in_last_row.eq(in_m_left <= 2 * R)]
            with m.Else():
                m.d.sync += [in_n_left.eq(in_n_left - C), self.in_last_col.eq(in_n_left <= 2 * C)]

    def load(self, size: _SizeCheck) -> list:
        return [self.in_m_left.eq(size.cm), self.in_n_left.eq(size.cn),
                self.in_last_row.eq(size.cm_fits), self.in_last_col.eq(size.cn_fits)]

    def start(self) -> list:
        return [self.accepting.eq(1)]


class _DrainWriter:
    """Drain side: each drained row, cropped, into the scratchpad at its row-major place and ORed
    into the detector (`last` with the tensor's final row).

    The place of each drained row is registered with the row. Tile and row-block ends are read
    from what is left of the tensor (a compare with a constant) and every start element is kept
    in its own register, so no adder feeds a compare. ROW_WRITE_LATENCY - 1 plain registers sit
    between the array's output and this control (the array and the scratchpad sit far apart on
    the die), then the w_ registers. The row's flags travel twice, one copy for the w_ registers
    and one for the tile counters, so each can be placed beside what it drives."""

    def __init__(self, m: Module, p: HardwareParams, array_o, pad: Scratchpad, detector_i,
                 size: _SizeCheck):
        R, C, dim = p.rows, p.cols, TENSOR_DIM_BITS
        self.i0, self.row_i = Signal(dim, name="i0"), Signal(dim, name="row_i")
        self.block_e = Signal(2 * dim, name="block_e")
        self.tile_e, self.row_e = Signal(2 * dim, name="tile_e"), Signal(2 * dim, name="row_e")
        # rows and columns of the tensor from this tile on
        self.m_left, self.n_left = Signal(dim, name="m_left"), Signal(dim, name="n_left")
        # n_left <= C, m_left <= R, registered beside them
        self.last_col, self.last_row = Signal(name="last_col"), Signal(name="last_row")
        i0, row_i, block_e = self.i0, self.row_i, self.block_e
        tile_e, row_e = self.tile_e, self.row_e
        m_left, n_left, last_col, last_row = self.m_left, self.n_left, self.last_col, self.last_row
        w_row = Signal.like(array_o.p.c, reset_less=True, name="w_row")
        w_valid, w_last = Signal(name="w_valid"), Signal(name="w_last")
        w_e0 = Signal(2 * dim, reset_less=True, name="w_e0")
        w_count = Signal(range(C + 1), reset_less=True, name="w_count")
        row_block_ends = last_col
        m.d.comb += array_o.ready.eq(1)

        def drained(value, name, reset_less=False, attrs=None):
            for stage in range(ROW_WRITE_LATENCY - 1):
                reg = Signal.like(value, name=f"{name}{stage}", reset_less=reset_less,
                                  attrs=attrs or {})
                m.d.sync += reg.eq(value)
                value = reg
            return value

        row_data = drained(array_o.p.c, "drain_row", reset_less=True)
        row_valid = drained(array_o.valid, "drain_valid", attrs=LOCAL)
        row_last = drained(array_o.p.last, "drain_last", attrs=LOCAL)
        tile_valid = drained(array_o.valid, "tile_valid", attrs=LOCAL)
        tile_last = drained(array_o.p.last, "tile_last", attrs=LOCAL)
        m.d.sync += [  # every cycle, read only beside w_valid: the row's valid is no clock enable
            w_valid.eq(row_valid),
            w_row.eq(row_data),
            w_e0.eq(row_e),
            w_count.eq(Mux(row_i < size.cm, Mux(row_block_ends, n_left, C), 0)),
            w_last.eq(row_last & row_block_ends & last_row),
        ]
        with m.If(tile_valid):
            with m.If(~tile_last):
                m.d.sync += [row_i.eq(row_i + 1), row_e.eq(row_e + size.cn)]
            with m.Elif(row_block_ends):  # next row block
                m.d.sync += [i0.eq(i0 + R), row_i.eq(i0 + R), n_left.eq(size.cn),
                             last_col.eq(size.cn_fits), m_left.eq(m_left - R),
                             last_row.eq(m_left <= 2 * R), block_e.eq(block_e + size.block_step),
                             tile_e.eq(block_e + size.block_step),
                             row_e.eq(block_e + size.block_step)]
            with m.Else():  # next tile of the row block
                m.d.sync += [row_i.eq(i0), n_left.eq(n_left - C), last_col.eq(n_left <= 2 * C),
                             tile_e.eq(tile_e + C), row_e.eq(tile_e + C)]
        m.d.comb += [
            pad.wr_en.eq(w_valid), pad.wr_e0.eq(w_e0), pad.wr_count.eq(w_count),
            pad.wr_row.eq(w_row),
            detector_i.valid.eq(w_valid), detector_i.p.last.eq(w_last),
        ]
        for col in range(C):
            m.d.comb += detector_i.p.data[col].eq(w_row[col])

    def load(self, size: _SizeCheck) -> list:
        return [self.i0.eq(0), self.row_i.eq(0), self.block_e.eq(0), self.tile_e.eq(0),
                self.row_e.eq(0), self.m_left.eq(size.cm), self.n_left.eq(size.cn),
                self.last_row.eq(size.cm_fits), self.last_col.eq(size.cn_fits)]


class _Replay:
    """The tensor out of the scratchpad in row-major order into the rounder, `lanes` elements per
    beat (`keep` marks the final partial beat, `last` ends the tensor) while `active`.

    Reads are issued SCRATCHPAD_READ_LATENCY beats ahead of the rounder's input; the read pipeline
    and its valid/last flags advance together, and freeze while the rounder stalls. The read
    enable reaches every block RAM, far from the replay counters: it has a net and a copy of the
    last valid flag of its own, so each can be placed beside what it drives."""

    def __init__(self, m: Module, p: HardwareParams, pad: Scratchpad, rounder_i):
        L = p.lanes
        self.last_beat = Signal(element_bits(p), name="last_beat")  # ceil(m * n / lanes) - 1
        self.final_keep = Signal(L, name="final_keep")
        self.rd_beat, self.active = Signal(element_bits(p), name="rd_beat"), Signal(name="replay")
        self.at_last = Signal(name="at_last")  # rd_beat == last_beat, kept beside rd_beat
        self.last_but_one = Signal(element_bits(p), name="last_but_one")  # set during the GEMM
        rd_valid = [Signal(name=f"rd_valid{n}") for n in range(SCRATCHPAD_READ_LATENCY)]
        rd_last = [Signal(name=f"rd_last{n}") for n in range(SCRATCHPAD_READ_LATENCY)]
        ram_valid = Signal(name="ram_valid")  # rd_valid[-1] again, for the RAMs
        advance, ram_advance = Signal(name="advance"), Signal(name="ram_advance")
        issue = Signal(name="issue")
        rd_beat, at_last = self.rd_beat, self.at_last
        m.d.comb += [
            advance.eq(~rd_valid[-1] | rounder_i.ready),
            ram_advance.eq(~ram_valid | rounder_i.ready),
            issue.eq(self.active & advance),
            pad.rd_en.eq(ram_advance),
            pad.rd_beat.eq(rd_beat),
            rounder_i.valid.eq(rd_valid[-1]),
            rounder_i.p.data.eq(pad.rd_data),
            rounder_i.p.keep.eq(Mux(rd_last[-1], self.final_keep, (1 << L) - 1)),
            rounder_i.p.last.eq(rd_last[-1]),
        ]
        with m.If(advance):
            m.d.sync += [rd_valid[0].eq(issue), rd_last[0].eq(issue & at_last)]
            m.d.sync += [rd_valid[n].eq(rd_valid[n - 1]) for n in range(1, len(rd_valid))]
            m.d.sync += [rd_last[n].eq(rd_last[n - 1]) for n in range(1, len(rd_last))]
        with m.If(ram_advance):
            m.d.sync += ram_valid.eq(rd_valid[-2])
        with m.If(issue):
            m.d.sync += [rd_beat.eq(rd_beat + 1), at_last.eq(rd_beat == self.last_but_one)]
        self.ends = issue & at_last  # the tensor's final read is issued

    def load(self, size: _SizeCheck) -> list:
        """The final beat and its keep from size (no compare when issuing), the counter at 0."""
        L = size.p.lanes
        return [self.last_beat.eq((size.size - 1) >> (L.bit_length() - 1)),
                self.final_keep.eq(low_mask((size.size - 1)[:L.bit_length() - 1] + 1, L)),
                self.rd_beat.eq(0), self.at_last.eq(size.one_beat)]

    def prepare(self) -> list:
        return [self.last_but_one.eq(self.last_beat - 1)]


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

