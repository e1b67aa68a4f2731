"""A small FIFO whose head is always register slot 0, so reading it needs no multiplexer."""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out


class SlotQueue(wiring.Component):
    """`depth` registers: `push` writes `data` into the slot at the fill level, `pop` moves every
    slot down one, `head` is slot 0 (valid the cycle after its push). The loss unit fills a
    queue with a row's values and then empties it, so a push and a pop never share a cycle (a
    push is then ignored), and it never pushes into a full queue nor pops an empty one.
    """

    def __init__(self, shape, depth: int):
        self.shape, self.depth = shape, depth
        super().__init__({
            "push": In(1),
            "data": In(shape),
            "pop": In(1),
            "head": Out(shape),
        })

    def elaborate(self, platform):
        m = Module()
        slots = [Signal(self.shape, name=f"slot{n}", reset_less=True) for n in range(self.depth)]
        level = Signal(range(self.depth + 1), name="level")
        with m.If(self.pop):
            m.d.sync += level.eq(level - 1)
            for n, slot in enumerate(slots):
                m.d.sync += slot.eq(slots[n + 1] if n + 1 < self.depth else slot)
        with m.Elif(self.push):
            m.d.sync += level.eq(level + 1)
            for n, slot in enumerate(slots):
                m.d.sync += slot.eq(Mux(level == n, self.data, slot))
        m.d.comb += self.head.eq(slots[0])
        return m
