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
from niti_hw.perf.timing import TENSOR_CFG_FIELDS, TENSOR_DIM_BITS
from niti_hw.rtl.bitwidth_detector import BitwidthDetector
from niti_hw.rtl.drain_walk import DrainWalk
from niti_hw.rtl.layouts import BITWIDTH, SHIFT, operand_layout, round_out_layout
from niti_hw.rtl.replay import Replay
from niti_hw.rtl.scratchpad import Scratchpad, check_scratchpad_params
from niti_hw.rtl.shift_round import ShiftRound
from niti_hw.rtl.systolic_array import SystolicArray
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
        m = Module()
        m.submodules.array = array = SystolicArray(p, backpressure=False)  # the pad takes every row
        # The detector sees a whole array row per cycle.
        m.submodules.detector = detector = BitwidthDetector(p.replace(lanes=p.cols,
                                                                      lfsr_lanes=p.cols))
        m.submodules.pad = pad = Scratchpad(p)
        m.submodules.rounder = rounder = ShiftRound(p)
        cfg = _TensorCfg()
        size = _SizeCheck(p)
        operands = _OperandCount(m, p, cfg, self.i, array)
        drain = DrainWalk(m, cfg, array, pad, detector, p.cols, p.rows)
        replay = Replay(m, p, pad, rounder)
        wiring.connect(m, rounder.o, wiring.flipped(self.o))
        status = self.status
        b = detector.o.payload
        # `idle` mirrors the IDLE state as a register: a comb decode of a state that has not yet
        # changed is never evaluated by Icarus and would read as X.
        idle = Signal(init=1)
        m.d.comb += self.cfg.ready.eq(idle)
        with m.FSM():
            with m.State("IDLE"):
                with m.If(self.cfg.valid):
                    m.d.sync += [idle.eq(0), status.eq(0)]
                    m.d.sync += cfg.take(self.cfg.p) + size.start(self.cfg.p)
                    m.next = "SIZE"
            with m.State("SIZE"):
                m.d.sync += cfg.derive(p)
                with m.If(size.step(m, cfg)):
                    m.next = "CHECK"
            with m.State("CHECK"):
                # The counters are loaded whether or not the tensor is refused (a refused tensor
                # never reads them): the registered refusal selects only the state and status.
                m.d.sync += operands.start(cfg) + drain.start + replay.start(size)
                with m.If(size.refuse):
                    m.d.sync += [status.refused.eq(1), idle.eq(1)]
                    m.next = "IDLE"
                with m.Else():
                    m.d.sync += operands.accepting.eq(1)
                    m.next = "GEMM"
            with m.State("GEMM"):
                m.d.sync += replay.last_but_one.eq(replay.last_beat - 1)
                with m.If(detector.o.valid):
                    m.d.sync += [
                        status.b.eq(b),
                        replay.tensor_k.eq(Mux(b > cfg.keep_bits, b - cfg.keep_bits, 0)),
                        status.no_update.eq(cfg.rule & (b == 0)),
                    ]
                    m.next = "REPLAY"
            with m.State("REPLAY"):
                m.d.comb += replay.replay.eq(1)
                m.d.sync += [replay.k.eq(replay.tensor_k), status.k.eq(replay.tensor_k)]
                with m.If(replay.done):
                    m.d.sync += idle.eq(1)
                    m.next = "IDLE"
        return m


class _TensorCfg:
    """The cfg's tensor in registers, taken in IDLE, and the constants the walk and the k rule
    derive from it in SIZE (each registered, so no logic sits between a cfg field and its use)."""

    def __init__(self):
        dim = TENSOR_DIM_BITS
        cm = Signal(dim)
        cn = Signal(dim)
        rule = Signal()
        mu = Signal(TENSOR_CFG_FIELDS["m_u"])
        # m <= R, n <= C: one tile row / column
        cm_fits = Signal()
        cn_fits = Signal()
        # the cfg's band - 1 and block - 1
        band_m1 = Signal(dim)
        block_m1 = Signal(dim)
        block_step = Signal(2 * dim)  # rows * n: elements from one row block to the next
        block_elems = Signal(2 * dim)  # block * C: from one column block to the next
        # block == 1, band == 1
        block_one = Signal()
        band_one = Signal()
        keep_bits = Signal.like(mu, name="keep_bits")  # m_u or 7 by the rule: k = max(0, B - it)
        self.m, self.n, self.rule, self.mu = cm, cn, rule, mu
        self.m_fits, self.n_fits, self.band_m1, self.block_m1 = cm_fits, cn_fits, band_m1, block_m1
        self.block_step, self.block_elems = block_step, block_elems
        self.block_one, self.band_one, self.keep_bits = block_one, band_one, keep_bits

    def take(self, beat) -> list:
        return [self.m.eq(beat.m), self.n.eq(beat.n), self.rule.eq(beat.rule),
                self.mu.eq(beat.m_u), self.band_m1.eq(beat.band - 1),
                self.block_m1.eq(beat.block - 1)]

    def derive(self, p: HardwareParams) -> list:
        return [self.block_step.eq(self.n * p.rows), self.m_fits.eq(self.m <= p.rows),
                self.n_fits.eq(self.n <= p.cols), self.block_elems.eq((self.block_m1 + 1) * p.cols),
                self.block_one.eq(self.block_m1 == 0), self.band_one.eq(self.band_m1 == 0),
                self.keep_bits.eq(Mux(self.rule, self.mu, INT8_BITS))]


class _SizeCheck:
    """size = m * n, one shift-add step per bit of m (no DSP): bit 0 comes with the cfg, bits
    1.. take dim - 1 SIZE steps, so in the last step size is final and only the compares,
    registered every step, read it: `refuse` (above the scratchpad, or empty) and `one_beat`."""

    def __init__(self, p: HardwareParams):
        dim = TENSOR_DIM_BITS
        self.dim, self.words, self.lanes = dim, p.tensor_buffer_words, p.lanes
        size = Signal(2 * dim)  # m * n
        # from size: above the scratchpad or empty; <= lanes
        refuse = Signal()
        one_beat = Signal()
        mul_m = Signal(dim)
        mul_n = Signal(2 * dim)
        mul_step = Signal(range(dim))
        self.size, self.refuse, self.one_beat = size, refuse, one_beat
        self.mul_m, self.mul_n, self.mul_step = mul_m, mul_n, mul_step

    def start(self, beat) -> list:
        return [self.size.eq(Mux(beat.m[0], beat.n, 0)), self.mul_m.eq(beat.m >> 1),
                self.mul_n.eq(beat.n << 1), self.mul_step.eq(0)]

    def step(self, m: Module, cfg: _TensorCfg):
        """One step's logic; returns the condition that this is the last."""
        with m.If(self.mul_m[0]):
            m.d.sync += self.size.eq(self.size + self.mul_n)
        m.d.sync += [
            self.refuse.eq((cfg.m == 0) | (cfg.n == 0) | (self.size > self.words)),
            self.one_beat.eq(self.size <= self.lanes),
            self.mul_m.eq(self.mul_m >> 1), self.mul_n.eq(self.mul_n << 1),
            self.mul_step.eq(self.mul_step + 1),
        ]
        return self.mul_step == self.dim - 1


class _OperandCount:
    """Operand side: which tile the incoming beats belong to (the tensor's rows and columns from
    that tile on); operands pass to the array only while `accepting`, which falls after the last
    tile's last beat. "Last tile column / row" are flags registered beside the counts (no compare
    between a count and the counters it updates)."""

    def __init__(self, m: Module, p: HardwareParams, cfg: _TensorCfg, i, array):
        dim, R, C = TENSOR_DIM_BITS, p.rows, p.cols
        in_m_left = Signal(dim)
        in_n_left = Signal(dim)
        # in_n_left <= C, in_m_left <= R
        in_last_col = Signal()
        in_last_row = Signal()
        accepting = Signal()  # GEMM phase with operands still due (a register: no state decode)
        m.d.comb += [
            array.i.valid.eq(i.valid & accepting),
            array.i.p.eq(i.p),
            i.ready.eq(array.i.ready & accepting),
        ]
        with m.If(i.valid & i.ready & i.p.last):
            with m.If(in_last_col):
                m.d.sync += [in_n_left.eq(cfg.n), in_last_col.eq(cfg.n_fits)]
                with m.If(in_last_row):
                    m.d.sync += accepting.eq(0)
                with m.Else():
                    m.d.sync += [in_m_left.eq(in_m_left - R), in_last_row.eq(in_m_left <= 2 * R)]
            with m.Else():
                m.d.sync += [in_n_left.eq(in_n_left - C), in_last_col.eq(in_n_left <= 2 * C)]
        self.accepting = accepting
        self.counts = (in_m_left, in_n_left, in_last_row, in_last_col)

    def start(self, cfg: _TensorCfg) -> list:
        """The CHECK state's: the first tile's counts (accepting rises only if not refused)."""
        in_m_left, in_n_left, in_last_row, in_last_col = self.counts
        return [in_m_left.eq(cfg.m), in_n_left.eq(cfg.n), in_last_row.eq(cfg.m_fits),
                in_last_col.eq(cfg.n_fits)]


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

