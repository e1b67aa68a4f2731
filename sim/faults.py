"""Deliberately broken DUTs: a wrapper that drops, duplicates or corrupts one output beat of a unit.

Used to prove that every bench fails, with a clear message and without hanging, when a unit loses a
beat, sends one too many, or flips a result bit (tests/test_sim_faults.py).
"""

from __future__ import annotations

from amaranth.hdl import Const, Module, Signal, Value
from amaranth.lib import wiring
from amaranth.lib.wiring import Out

FAULTS = ("drop", "extra", "flip")


class StreamFault(wiring.Component):
    """`inner` with the same ports, except that output beat number `at` (from 0) is dropped
    ("drop"), sent twice ("extra") or sent with bit 0 of its payload inverted ("flip": the lowest
    bit of the first result field)."""

    def __init__(self, inner: wiring.Component, fault: str, at: int = 5):
        if fault not in FAULTS:
            raise ValueError(f"fault must be one of {FAULTS}; got {fault!r}")
        self.inner, self.fault, self.at = inner, fault, at
        super().__init__(inner.signature)

    def elaborate(self, platform):
        m = Module()
        m.submodules.inner = inner = self.inner
        for name, member in self.signature.members.items():  # every other port passes through
            ours, theirs = getattr(self, name), getattr(inner, name)
            if name == "o":
                continue
            if member.is_signature:
                wiring.connect(m, wiring.flipped(ours), theirs)
            else:
                m.d.comb += ours.eq(theirs) if member.flow == Out else theirs.eq(ours)

        count = Signal(range(self.at + 2))  # inner output beats taken so far, saturating
        repeated = Signal()
        hit = count == self.at
        with m.If(inner.o.valid & inner.o.ready & (count <= self.at)):
            m.d.sync += count.eq(count + 1)
        # Plain expressions, no comb If: Icarus never evaluates a comb process whose inputs keep
        # their initial values, and its outputs would read as X.
        drop = hit if self.fault == "drop" else Const(0, 1)
        hold = hit & ~repeated if self.fault == "extra" else Const(0, 1)
        flip = hit if self.fault == "flip" else Const(0, 1)
        m.d.comb += [
            self.o.valid.eq(inner.o.valid & ~drop),
            inner.o.ready.eq((self.o.ready | drop) & ~hold),
            Value.cast(self.o.payload).eq(Value.cast(inner.o.payload) ^ flip),
        ]
        with m.If(hold & self.o.valid & self.o.ready):  # the first transfer of beat `at` stays
            m.d.sync += repeated.eq(1)
        return m
