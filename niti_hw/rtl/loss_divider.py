"""q = (t << 11) // C of SPEC's loss gradient by non-restoring long division, a bit per cycle."""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from niti_hw.golden.loss import QUOTIENT_SHIFT
from niti_hw.perf.timing import LOSS_DIVIDE_CYCLES
from niti_hw.rtl.loss_terms import TERM

QUOTIENT = unsigned(QUOTIENT_SHIFT + 1)
"""0..2**11: t <= C, so (t << 11) // C has 12 bits."""
assert LOSS_DIVIDE_CYCLES == QUOTIENT.width, "one cycle per quotient bit"


class LossDivider(wiring.Component):
    """A row's divisions (t_i << 11) // C back to back, one every `LOSS_DIVIDE_CYCLES` cycles.

    `go` starts `count` divisions (1 or more) in the next cycle; each takes its term `t` from the
    head of a queue (`pop` is high in its first cycle) and the row sum `divisor` C (C > 0 and
    t <= C; C holds still until the last). Each quotient is on `quotient` while `done` is high,
    12 cycles after its `pop`; `finished` comes with the last one.

    Step 1 is r = t - C, each later step r = 2r - C for r >= 0 and 2r + C for r < 0; the
    quotient's bit of a step is r >= 0. That remainder is the restoring division's trial value
    2 rho - C, so the bits are the restoring quotient's, with no correction at the end; the
    sign of r picks the next operation before the adder, so one carry chain, and nothing after
    it, sits between the remainder register and itself. r lies in [-C, C), so arithmetic modulo
    2**(bits(C) + 1) is exact. Every control signal is a register.
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
        width = self.divisor_bits + 1
        remainder = Signal(signed(width), name="remainder", reset_less=True)
        quotient = Signal(QUOTIENT, name="quotient_bits", reset_less=True)
        steps_left = Signal(range(LOSS_DIVIDE_CYCLES), name="steps_left")
        left = Signal.like(self.count, name="divisions_left")  # to start after this one
        start = self.pop
        running = steps_left != 0
        ending = running & (steps_left == 1)
        again = ending & (left != 0)
        m.d.sync += [start.eq(self.go | again), self.done.eq(ending),
                     self.finished.eq(ending & (left == 0))]
        with m.If(self.go):
            m.d.sync += left.eq(self.count - 1)
        with m.Elif(again):
            m.d.sync += left.eq(left - 1)

        subtract = start | ~remainder[-1]
        operand = Mux(start, self.t, remainder << 1)[:width]
        divisor = self.divisor ^ subtract.replicate(self.divisor_bits)
        # One adder with carry-in `subtract`: bit 0 of the sum holds the carry trick.
        total = (Cat(Const(1, 1), operand) + Cat(subtract, divisor, subtract))[1:width + 1]
        with m.If(start | running):
            m.d.sync += [remainder.eq(total), quotient.eq(Cat(~total[-1], quotient[:-1]))]
        with m.If(start):
            m.d.sync += steps_left.eq(LOSS_DIVIDE_CYCLES - 1)
        with m.Elif(running):
            m.d.sync += steps_left.eq(steps_left - 1)
        m.d.comb += self.quotient.eq(quotient)
        return m
