"""LOSS: the int8 logits and labels streamed from the banks through `LossGradient` into int8
error rows, as the reference machine's `_loss` (golden `ce_gradient`)."""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from niti_hw.golden.loss import ERROR_EXPONENT
from niti_hw.params import HardwareParams
from niti_hw.perf.timing import BANK_READ_LATENCY
from niti_hw.program.isa import Kind
from niti_hw.rtl.engine import Engine
from niti_hw.rtl.instruction import EXPONENT, MODE_BITS, config_layout
from niti_hw.rtl.lfsr_bank import lfsr_port_signature
from niti_hw.rtl.loss_gradient import DEFAULT_MAX_CLASSES, LossGradient, class_shape
from niti_hw.rtl.row_stream import M_BITS, row_of, widen

LOSS_CLASSES = DEFAULT_MAX_CLASSES
"""The most classes (an instruction's `n`) the core's loss unit takes; the sequencer refuses
more."""


def sample_rows(classes: int, lanes: int) -> int:
    """Bank rows a sample's `classes` logits can span (they start at any lane)."""
    return (lanes - 1 + classes + lanes - 1) // lanes


class LossEngine(Engine):
    """LOSS: m samples of n logits (n <= `LOSS_CLASSES`) at `a`, row-major in an int8 bank, and
    their m labels at `b` -> e, ce_gradient's m x n int8 errors, row-major at `dst`; `exponent`
    (ERROR_EXPONENT) is the sequencer's for exp[dst]. `s` is exp[a], read at `start`; the
    rounding mode is `config`'s for the loss kind, as golden rounds every loss with
    `policy.loss`; a stochastic loss draws from the core's LFSR lanes (`lfsr`).

    A sample's logits start at any lane: its rows are read (one per cycle, the label's row on
    the second port beside the first) into a buffer of `sample_rows` rows, the logits picked
    from it at the sample's first lane and offered to the unit as one row beat. The next
    sample is read while the unit works on this one (15 n + 13 cycles a row), so the unit
    never waits after the first. The unit's output beats are the error rows, written as they
    come (its `keep` the lane mask). A label outside 0..n-1 gives that sample's row of zeros,
    as the unit gives for a logit of -128 (the machine raises on both; the core does not check
    data).

    Cycles from `start` to `done`: `niti_hw.perf.timing`'s `loss_engine_cycles`.
    """

    def __init__(self, params: HardwareParams, max_classes: int = LOSS_CLASSES):
        super().__init__(params, config=In(config_layout()), s=In(EXPONENT),
                         exponent=Out(EXPONENT), lfsr=Out(lfsr_port_signature(params)))
        self.max_classes = max_classes
        self.unit = LossGradient(params, max_classes, runtime_mode=True, shared_lfsr=True)

    def elaborate(self, platform):
        p, op, most = self.params, self.op, self.max_classes
        L, shift = p.lanes, p.lanes.bit_length() - 1
        m = Module()
        m.submodules.unit = unit = self.unit
        wiring.connect(m, wiring.flipped(self.lfsr), unit.lfsr)
        m.d.comb += [self.exponent.eq(ERROR_EXPONENT), unit.o.ready.eq(1)]

        mode = Signal(MODE_BITS)
        classes = Signal(class_shape(most))
        cfg_valid = Signal()
        m.d.comb += [unit.mode_code.eq(mode), unit.cfg.valid.eq(cfg_valid),
                     unit.cfg.p.classes.eq(classes)]
        with m.If(unit.cfg.ready & cfg_valid):
            m.d.sync += cfg_valid.eq(0)

        # The reads of a sample: its logits rows on port 0, its label's row on port 1.
        word = Signal(M_BITS + classes.shape().width)  # the sample's first logit, from `a`
        first = Signal(range(L), name="first_lane")  # of the sample being offered
        slots = sample_rows(most, L)
        left = Signal(range(slots + 1), name="rows_left")  # rows still to read
        slot = Signal(range(slots), name="read_slot")
        a_row, label_row = Signal.like(self.rd[0].row), Signal.like(self.rd[1].row)
        label_lane = Signal(range(L))
        reading = left != 0
        m.d.comb += [self.rd[0].en.eq(reading), self.rd[0].bank.eq(op.a_bank),
                     self.rd[0].row.eq(a_row + slot),
                     self.rd[1].en.eq(reading & (slot == 0)), self.rd[1].bank.eq(op.b_bank),
                     self.rd[1].row.eq(label_row)]
        arrived, arrived_slot = reading, slot  # the read's slot, BANK_READ_LATENCY later
        arrived_last, arrived_label = reading & (left == 1), reading & (slot == 0)
        for stage in range(BANK_READ_LATENCY):
            values = [Signal.like(v, name=f"read_{name}{stage}") for v, name in
                      zip((arrived, arrived_slot, arrived_last, arrived_label),
                          ("valid", "slot", "last", "label"))]
            m.d.sync += [new.eq(old) for new, old in
                         zip(values, (arrived, arrived_slot, arrived_last, arrived_label))]
            arrived, arrived_slot, arrived_last, arrived_label = values
        with m.If(reading):
            m.d.sync += [left.eq(left - 1), slot.eq(slot + 1)]

        buffer = Signal(slots * L * 8, name="sample_buffer", reset_less=True)
        with m.If(arrived):
            with m.Switch(arrived_slot):
                for k in range(slots):
                    with m.Case(k):
                        m.d.sync += buffer[k * L * 8:(k + 1) * L * 8].eq(
                            Cat(*[self.rd[0].data[n][:8] for n in range(L)]))
        label = Signal(class_shape(most), name="label", reset_less=True)
        with m.If(arrived_label):
            value = self.rd[1].data[label_lane]
            m.d.sync += label.eq(Mux((value >= 0) & (value < classes), value, -1))

        offered, last = Signal(), Signal()  # the row beat; the tensor's final sample
        samples_left = Signal(M_BITS)  # samples after the one being read
        logits = buffer.bit_select(Cat(Const(0, 3), first), most * 8)
        m.d.comb += [unit.i.valid.eq(offered), unit.i.p.y.eq(label), unit.i.p.last.eq(last),
                     unit.i.p.a.eq(logits)]
        more = Signal()  # another sample to read once this one is offered

        def read_sample(start_word, n, remaining):
            """Statements that read the sample of `n` logits whose first is at `start_word`,
            `remaining` samples after it."""
            lane = start_word[:shift] if shift else 0
            return [left.eq(((lane + n - 1) >> shift) + 1), slot.eq(0),
                    a_row.eq(row_of(op.a_base, L) + (start_word >> shift)),
                    first.eq(lane), last.eq(remaining == 0), more.eq(remaining != 0)]

        with m.If(arrived & arrived_last):
            m.d.sync += offered.eq(1)
        with m.If(offered & unit.i.ready):
            m.d.sync += offered.eq(0)
            with m.If(more):
                following = word + classes
                m.d.sync += [word.eq(following), samples_left.eq(samples_left - 1),
                             label_lane.eq(label_lane + 1)]
                m.d.sync += read_sample(following, classes, samples_left - 1)
                with m.If(label_lane == L - 1):
                    m.d.sync += label_row.eq(label_row + 1)

        # The errors, a row per output beat.
        dst_row = Signal.like(self.wr[0].row)
        m.d.comb += [self.wr[0].en.eq(unit.o.valid), self.wr[0].bank.eq(op.dst_bank),
                     self.wr[0].row.eq(dst_row), self.wr[0].mask.eq(unit.o.p.keep),
                     self.wr[0].data.eq(widen(m, unit.o.p.data, p, "errors"))]
        with m.If(unit.o.valid):
            m.d.sync += dst_row.eq(dst_row + 1)
        m.d.sync += self.done.eq(unit.o.valid & unit.o.p.last)

        with m.If(self.start):
            m.d.sync += [mode.eq(self.config.modes[Kind.LOSS]), classes.eq(op.n),
                         unit.cfg.p.s.eq(self.s), cfg_valid.eq(1), word.eq(0),
                         samples_left.eq(op.m - 1), label_lane.eq(0),  # `b` starts a row
                         label_row.eq(row_of(op.b_base, L)), dst_row.eq(row_of(op.dst_base, L))]
            m.d.sync += read_sample(Const(0, M_BITS), op.n, op.m - 1)
        return m
