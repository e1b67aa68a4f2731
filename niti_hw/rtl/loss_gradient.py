"""SPEC's integer cross-entropy gradient (golden `ce_gradient`) as a streaming unit: a cfg beat
(exponent s, classes), then one beat per sample row (its logits and label), out the int8 errors
e = R((t << 11) // C with the label's entry less the row sum, 4, mode) in row-major order,
`lanes` per beat.

A row runs through the parts one after the other: the walk over its logits for the largest
(`_Walker`), the terms t_i and their sum C (`LossTerms`), one division per class (`LossDivider`),
then the label's correction on the way into the lanes (`LanePacker`) and the rounding unit
(`ShiftRound`, shift 4). The terms and the quotients wait in `SlotQueue`s whose head is a register.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from niti_hw.golden.loss import ROUND_SHIFT, TAYLOR_MAX_BITS
from niti_hw.params import HardwareParams
from niti_hw.rtl.lane_packer import LanePacker
from niti_hw.rtl.instruction import MODE_BITS
from niti_hw.rtl.layouts import INT8
from niti_hw.rtl.lfsr_bank import lfsr_port_signature
from niti_hw.rtl.loss_divider import QUOTIENT, LossDivider
from niti_hw.rtl.loss_terms import EXPONENT, TERM, LossTerms
from niti_hw.rtl.shift_round import ShiftRound
from niti_hw.rtl.slot_queue import SlotQueue

DEFAULT_MAX_CLASSES = 10
MAX_CLASSES = 64
ERROR = signed(QUOTIENT.width + 1)
"""e_i in 0..2048, the label's e_y - sum e in -2048..0."""


def class_shape(max_classes: int):
    """A class count or label, wide enough to hold one beyond `max_classes` (refused)."""
    return unsigned(max_classes.bit_length())


def loss_cfg_layout(max_classes: int) -> data.StructLayout:
    """The logits' exponent s and the classes per row (1..max_classes)."""
    return data.StructLayout({"s": EXPONENT, "classes": class_shape(max_classes)})


def loss_row_layout(max_classes: int) -> data.StructLayout:
    """One sample: its int8 logits (the first `classes` count), its label, `last` on the final
    row of the tensor."""
    return data.StructLayout({"a": data.ArrayLayout(INT8, max_classes),
                              "y": class_shape(max_classes), "last": 1})


def loss_out_layout(p: HardwareParams) -> data.StructLayout:
    """`lanes` int8 errors in row-major order; `keep` marks the values of a partial final beat."""
    return data.StructLayout({"data": data.ArrayLayout(INT8, p.lanes), "keep": p.lanes,
                              "last": 1})


class LossGradient(wiring.Component):
    """ce_gradient(a, s, y, mode) of golden, `mode` fixed at elaboration (default: the params').

    Per tensor: one `cfg` beat, then one `i` beat per row, `last` on the final one. Out on `o`:
    the samples x classes errors, `lanes` per beat, `keep` on the final partial beat and `last`.
    A tensor whose classes lie outside 1..max_classes gives zeros (`classes` per row; none at 0),
    a row with its label >= classes or a logit of -128 among its classes gives a row of zeros;
    either sets `bad_input` until reset (golden refuses both). Stochastic mode draws from the
    rounding unit's LFSRs, which persist across tensors, as golden's lanes do.

    For the core: `runtime_mode` builds a rounder of every mode (`ShiftRound`'s) and adds the
    `mode_code` input (one of `ROUND_MODES`, held from the cfg beat until the tensor's last beat
    is out); `shared_lfsr` draws the stochastic lanes from the `lfsr` port (an `LfsrBank`'s).

    Throughput and latency, no gaps and no backpressure: `loss_row_cycles(classes)`
    (15 classes + 13) per row, one row at a time, and `loss_cycles(samples, classes)` from the
    cfg beat to the last output beat (niti_hw/perf/timing.py). Backpressure on `o` fills
    ShiftRound's output buffer, then the packer's; the packer's registered ready then holds the
    correction stage and the walk over the quotients.
    """

    def __init__(self, params: HardwareParams, max_classes: int = DEFAULT_MAX_CLASSES,
                 mode: str | None = None, *, runtime_mode: bool = False,
                 shared_lfsr: bool = False):
        if isinstance(max_classes, bool) or not isinstance(max_classes, int) \
                or not 1 <= max_classes <= MAX_CLASSES:
            self._MustUse__silence = True  # refused, never elaborated: no "unused" warning
            raise ValueError(f"max_classes must be an int in 1..{MAX_CLASSES}; "
                             f"got {max_classes!r}")
        self.params, self.max_classes = params, max_classes
        self.mode = params.round_mode if mode is None else mode
        self.rounder = ShiftRound(params, self.mode, shared_lfsr, runtime_mode=runtime_mode)
        extra = {"mode_code": In(MODE_BITS)} if runtime_mode else {}
        if self.rounder.shared_lfsr:
            extra["lfsr"] = Out(lfsr_port_signature(params))
        super().__init__({
            "cfg": In(stream.Signature(loss_cfg_layout(max_classes))),
            "i": In(stream.Signature(loss_row_layout(max_classes))),
            "o": Out(stream.Signature(loss_out_layout(params))),
            "bad_input": Out(1),
            **extra,
        })

    def elaborate(self, platform):
        m = Module()
        most = self.max_classes
        divisor_bits = (most * ((1 << TAYLOR_MAX_BITS) - 1)).bit_length()
        m.submodules.terms = terms = LossTerms()
        m.submodules.terms_queue = terms_queue = SlotQueue(TERM, most)
        m.submodules.divider = divider = LossDivider(divisor_bits, class_shape(most))
        m.submodules.error_queue = error_queue = SlotQueue(QUOTIENT, most)
        m.submodules.packer = packer = LanePacker(self.params, ERROR)
        self._rounding(m, packer)

        shape = class_shape(most)
        cfg = Signal(loss_cfg_layout(most), name="cfg_reg", reset_less=True)
        row = Signal(loss_row_layout(most), name="row", reset_less=True)
        bad_cfg, bad_row = Signal(name="bad_cfg"), Signal(name="bad_row")
        last_class = Signal(shape, name="last_class", reset_less=True)  # classes - 1
        count = Signal(shape, name="count")  # classes walked or emitted
        final = count == last_class
        total = Signal(unsigned(divisor_bits), name="row_sum", reset_less=True)  # C
        errors = Signal(QUOTIENT, name="error_sum", reset_less=True)  # sum of e_i
        m.d.comb += terms.s.eq(cfg.s)

        walker = _Walker(m, row)
        m.d.comb += [terms.a.eq(walker.offered), terms.valid.eq(walker.to_terms),
                     terms.ref.eq(walker.ref), terms.last.eq(walker.last)]
        with m.If(terms.t_valid):
            m.d.sync += total.eq(Mux(terms.t_ref, 0, total + terms.t))
        m.d.comb += [terms_queue.push.eq(terms.t_term),
                     terms_queue.data.eq(terms.t),
                     divider.t.eq(terms_queue.head), divider.divisor.eq(total),
                     terms_queue.pop.eq(divider.pop), divider.count.eq(cfg.classes),
                     error_queue.push.eq(divider.done), error_queue.data.eq(divider.quotient)]
        with m.If(divider.done):
            m.d.sync += errors.eq(errors + divider.quotient)

        _refusals(m, row, cfg.classes, most, bad_row)

        # The label's correction, registered between the queue's head and the packer. `emit`
        # (a flag of its own beside the FSM's state) walks the queue while the packer takes.
        corrected = Signal(ERROR, name="corrected", reset_less=True)
        corrected_valid, corrected_last = Signal(name="corrected_valid"), Signal(name="corr_last")
        m.d.comb += [packer.i.valid.eq(corrected_valid), packer.i.p.value.eq(corrected),
                     packer.i.p.last.eq(corrected_last)]
        advance = ~corrected_valid | packer.i.ready
        emit = Signal(name="emit")
        take = advance & emit
        with m.If(advance):
            m.d.sync += corrected_valid.eq(emit)
        with m.If(take):
            value = Mux(count == row.y, error_queue.head - errors, error_queue.head)
            m.d.sync += [corrected.eq(Mux(bad_cfg | bad_row, 0, value)),
                         corrected_last.eq(row.last & final)]
        m.d.comb += error_queue.pop.eq(take & ~bad_cfg)
        with m.If(emit & bad_row & ~bad_cfg):
            m.d.sync += self.bad_input.eq(1)

        with m.FSM(name="loss_fsm") as fsm:
            with m.State("CFG"):
                with m.If(self.cfg.valid):
                    refused = (self.cfg.p.classes == 0) | (self.cfg.p.classes > most)
                    m.d.sync += [cfg.eq(self.cfg.p), bad_cfg.eq(refused),
                                 last_class.eq(self.cfg.p.classes - 1)]
                    with m.If(refused):
                        m.d.sync += self.bad_input.eq(1)
                    m.next = "ROW"
            with m.State("ROW"):
                with m.If(self.i.valid):
                    m.d.sync += [row.eq(self.i.p), count.eq(0)]
                    with m.If(~bad_cfg):
                        m.next = "MAX"
                    with m.Elif(cfg.classes != 0):
                        m.d.sync += emit.eq(1)
                        m.next = "EMIT"
                    with m.Elif(self.i.p.last):
                        m.next = "CFG"
            with m.State("MAX"):
                m.d.comb += walker.walk(count, "max")
                m.d.sync += [count.eq(count + 1), errors.eq(0)]
                with m.If(final):
                    m.d.sync += count.eq(0)
                    m.next = "REF"
            with m.State("REF"):
                m.d.comb += walker.walk(count, "ref")
                m.next = "TERMS"
            with m.State("TERMS"):
                m.d.comb += walker.walk(count, "terms", final)
                m.d.sync += count.eq(count + 1)
                with m.If(final):
                    m.d.sync += count.eq(0)
                    m.next = "SUM"
            with m.State("SUM"):
                with m.If(terms.t_last):
                    m.d.comb += divider.go.eq(1)
                    m.next = "DIVIDE"
            with m.State("DIVIDE"):
                with m.If(divider.finished):
                    m.d.sync += emit.eq(1)
                    m.next = "EMIT"
            with m.State("EMIT"):
                with m.If(take):
                    m.d.sync += count.eq(count + 1)
                    with m.If(final):
                        m.d.sync += [count.eq(0), emit.eq(0)]
                        m.next = "ROW"
                        with m.If(row.last):
                            m.next = "CFG"
        # Outside the FSM's process: plain assignments, which Icarus evaluates from time 0.
        m.d.comb += [self.cfg.ready.eq(fsm.ongoing("CFG")), self.i.ready.eq(fsm.ongoing("ROW"))]
        return m

    def _rounding(self, m: Module, packer) -> None:
        """The packer's beats through the rounder (in `mode_code`'s mode, when it has one),
        shift 4, out on `o`."""
        m.submodules.rounder = rounder = self.rounder
        m.d.comb += [rounder.i.valid.eq(packer.o.valid), rounder.i.p.keep.eq(packer.o.p.keep),
                     rounder.i.p.last.eq(packer.o.p.last), rounder.i.p.k.eq(ROUND_SHIFT),
                     rounder.o.ready.eq(self.o.ready)]
        m.d.comb += [rounder.i.p.data[n].eq(packer.o.p.data[n]) for n in range(self.params.lanes)]
        if "mode_code" in rounder.signature.members:
            m.d.comb += rounder.mode_code.eq(self.mode_code)
        if rounder.shared_lfsr:
            wiring.connect(m, wiring.flipped(self.lfsr), rounder.lfsr)
        m.d.comb += [self.o.p.data.eq(rounder.o.p.data), self.o.p.keep.eq(rounder.o.p.keep),
                     self.o.p.last.eq(rounder.o.p.last), packer.o.ready.eq(rounder.i.ready),
                     self.o.valid.eq(rounder.o.valid)]


def _refusals(m: Module, row, classes, most: int, bad_row) -> None:
    """`bad_row`: the row's label is >= classes or a logit among its first `classes` is -128
    (golden refuses both). Two register stages from the row (the compares, then their OR), well
    before the row's errors leave."""
    minus = Signal(most, name="logit_minus_128")
    active = Signal(most, name="class_active")
    label = Signal(name="label_refused")
    m.d.sync += [minus.eq(Cat(*[row.a[n] == -128 for n in range(most)])),
                 active.eq(Cat(*[classes > n for n in range(most)])),
                 label.eq(row.y >= classes), bad_row.eq(label | (minus & active).any())]


class _Walker:
    """The walks over a row's logits: each cycle's logit is registered (`item`), read by the
    largest-so-far compare (the walk for the maximum), then offered to `LossTerms` (`offered`:
    the largest first, with `ref`, then every logit). The largest is offered from its own
    register, which is final the cycle after the walk's last compare, so no compare feeds the
    logit register. `walk(count, kind)` returns the statements of this cycle's walk."""

    def __init__(self, m: Module, row):
        self.item = Signal(INT8, name="walk_item", reset_less=True)
        self.to_max, self.first = Signal(name="walk_to_max"), Signal(name="walk_first")
        self.to_terms, self.ref = Signal(name="walk_to_terms"), Signal(name="walk_ref")
        self.last = Signal(name="walk_last")
        self.largest = Signal(INT8, name="largest", reset_less=True)
        with m.If(self.to_max & (self.first | (self.item > self.largest))):
            m.d.sync += self.largest.eq(self.item)
        self.offered = Mux(self.ref, self.largest, self.item)
        self._kind = Signal(2, name="walk_kind")  # 0 idle, 1 max, 2 ref, 3 terms
        self._index = Signal(range(len(row.a) + 1), name="walk_index")
        self._final = Signal(name="walk_final")
        m.d.sync += [self.item.eq(row.a[self._index]), self.to_max.eq(self._kind == 1),
                     self.first.eq(self._index == 0), self.to_terms.eq(self._kind >= 2),
                     self.ref.eq(self._kind == 2), self.last.eq(self._final)]

    def walk(self, count, kind: str, final=0):
        """This cycle's walk: `count` is the logit's index, `final` marks the row's last one
        offered to the terms."""
        return [self._kind.eq({"max": 1, "ref": 2, "terms": 3}[kind]), self._index.eq(count),
                self._final.eq(final)]
