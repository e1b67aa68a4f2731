"""q = (t << 11) // C of SPEC's loss gradient by non-restoring long division, a bit per cycle."""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from niti_hw.golden.loss import QUOTIENT_SHIFT
from niti_hw.perf.timing import LOSS_DIVIDE_CYCLES, LOSS_DIVIDE_SETUP
from niti_hw.rtl.loss_terms import TERM
from niti_hw.rtl.target import LOCAL

QUOTIENT = unsigned(QUOTIENT_SHIFT + 1)
"""0..2**11: t <= C, so (t << 11) // C has 12 bits."""
assert LOSS_DIVIDE_CYCLES == QUOTIENT.width, "one cycle per quotient bit"


class LossDivider(wiring.Component):
    """A row's divisions (t_i << 11) // C back to back, one every `LOSS_DIVIDE_CYCLES` cycles.

    `go` (with the row sum `divisor` C final from the next cycle on, C > 0) starts `count`
    divisions (1 or more), the first `LOSS_DIVIDE_SETUP` cycles later. Each takes its term `t`
    (t <= C) from the head of a queue, which `pop` advances in the division's first cycle; its
    quotient is on `quotient` while `done` is high, 12 cycles after that; `finished` comes with
    the last one. C must hold still until then.

    Step 1 is r = t - C, each later step r = 2r - C for r >= 0 and 2r + C for r < 0; the
    quotient's bit of a step is r >= 0. That remainder is the restoring division's trial value
    2 rho - C, so the bits are the restoring quotient's, with no correction at the end. Both
    2r + C and 2r - C are added from registers (-C and the head's t - C are registered ahead),
    and one multiplexer after the carry chains picks the step, or t - C on a division's first
    cycle, by registered flags. r lies in [-C, C), so arithmetic modulo 2**(bits(C) + 1) is exact.
    """

    def __init__(self, divisor_bits: int, count_shape):
        self.divisor_bits = divisor_bits
        super().__init__({
            "go": In(1),
            "count": In(count_shape),
            "t": In(TERM),
            "divisor": In(unsigned(divisor_bits)),
            "pop": Out(1),
            "quotient": Out(QUOTIENT),
            "done": Out(1),
            "finished": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        width = signed(self.divisor_bits + 1)
        remainder = Signal(width, name="remainder", reset_less=True)
        negated = Signal(width, name="negated_divisor", reset_less=True)  # -C
        first = Signal(width, name="first_step", reset_less=True)  # t - C of the queue's head
        m.d.sync += [negated.eq(-self.divisor), first.eq(self.t - self.divisor)]
        quotient = Signal(QUOTIENT, name="quotient_bits", reset_less=True)
        steps_left = Signal(range(LOSS_DIVIDE_CYCLES), name="steps_left")
        left = Signal.like(self.count, name="divisions_left")  # to start after this one
        armed = Signal(name="armed")  # `go` seen: `first` holds the row's first term less C
        # A division's first cycle, twice: the step's select and the queue's shift sit apart.
        start = Signal(name="start", attrs=LOCAL)
        m.d.comb += self.pop.eq(start)
        running = steps_left != 0
        ending = running & (steps_left == 1)
        again = ending & (left != 0)
        m.d.sync += [armed.eq(self.go), start.eq(armed | again), self.done.eq(ending),
                     self.finished.eq(ending & (left == 0))]
        with m.If(self.go):
            m.d.sync += left.eq(self.count - 1)
        with m.Elif(again):
            m.d.sync += left.eq(left - 1)
        assert LOSS_DIVIDE_SETUP == 2  # go -> armed -> start

        doubled = remainder << 1
        step = Mux(remainder[-1], doubled + self.divisor, doubled + negated)
        new = Signal(width, name="new_remainder")
        m.d.comb += new.eq(Mux(start, first, step))
        with m.If(start | running):
            m.d.sync += [remainder.eq(new), quotient.eq(Cat(~new[-1], quotient[:-1]))]
        with m.If(start):
            m.d.sync += steps_left.eq(LOSS_DIVIDE_CYCLES - 1)
        with m.Elif(running):
            m.d.sync += steps_left.eq(steps_left - 1)
        m.d.comb += self.quotient.eq(quotient)
        return m
