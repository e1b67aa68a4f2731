"""A walking engine's two ends on the banks, a word at a time: a walk's elements read as words
(the row, then the element's lane picked when the row arrives), and result words written one
after another from a tensor's base (a one-hot lane mask: a word need not start a row).

Parts of an engine's module, as `row_stream`'s are: a few registers the engine starts with its
instruction."""

from __future__ import annotations

from amaranth.hdl import Array, Module, Signal

from niti_hw.perf.timing import BANK_READ_LATENCY, WORD_PICK_LATENCY
from niti_hw.rtl.layouts import INT32
from niti_hw.rtl.row_stream import M_BITS, row_of

if WORD_PICK_LATENCY != 1:
    raise RuntimeError("rtl/word_stream.py picks a word's lane into one register: perf.timing's "
                       "WORD_PICK_LATENCY must say 1")


class WordReads:
    """The walk's `element` read on `ports` (each its own bank and base; one element address),
    where the element is `inside` its tensor. `element` (its fields) comes out again
    `BANK_READ_LATENCY` + `WORD_PICK_LATENCY` cycles later as `arrived`, beside `words`: each
    port's word of it, its lane picked from the row into a register. `enables`: a signal per
    port that must hold too for it to read (default: all)."""

    def __init__(self, m: Module, ports, element, lanes: int, enables=None):
        shift = lanes.bit_length() - 1
        self.lanes = lanes
        self.banks = [Signal.like(port.bank, name=f"word{n}_bank") for n, port in enumerate(ports)]
        self.rows = [Signal.like(port.row, name=f"word{n}_base_row")
                     for n, port in enumerate(ports)]
        for port, bank, row, enable in zip(ports, self.banks, self.rows,
                                           enables or [1] * len(ports)):
            m.d.comb += [port.en.eq(element.valid & element.inside & enable), port.bank.eq(bank),
                         port.row.eq(row + (element.addr >> shift))]
        lane = element.addr[:shift]
        for stage in range(BANK_READ_LATENCY):
            later = Signal.like(element, name=f"element{stage}")
            later_lane = Signal.like(lane, name=f"lane{stage}")
            m.d.sync += [later.eq(element), later_lane.eq(lane)]
            element, lane = later, later_lane
        self.arrived = Signal.like(element, name="arrived")
        self.words = [Signal(INT32, name=f"word{n}") for n in range(len(ports))]
        m.d.sync += self.arrived.eq(element)
        for port, word in zip(ports, self.words):
            m.d.sync += word.eq(Array(port.data[n] for n in range(lanes))[lane])

    def start(self, places) -> list:
        """Statements that aim the ports at (bank, base) `places`, one per port."""
        return [statement for (bank, base), port_bank, row in zip(places, self.banks, self.rows)
                for statement in (port_bank.eq(bank), row.eq(row_of(base, self.lanes)))]


class WordWrites:
    """`data` into the next word of a tensor on `port` each cycle `valid` holds."""

    def __init__(self, m: Module, port, valid, data, lanes: int, name: str):
        shift = lanes.bit_length() - 1
        self.lanes = lanes
        self.bank = Signal.like(port.bank, name=f"{name}_bank")
        self.row = Signal.like(port.row, name=f"{name}_base_row")
        self.word = Signal(M_BITS, name=f"{name}_word")
        m.d.comb += [port.en.eq(valid), port.bank.eq(self.bank),
                     port.row.eq(self.row + (self.word >> shift)),
                     port.mask.eq(1 << self.word[:shift])]
        m.d.comb += [port.data[n].eq(data) for n in range(lanes)]
        with m.If(valid):
            m.d.sync += self.word.eq(self.word + 1)

    def start(self, bank, base) -> list:
        return [self.bank.eq(bank), self.row.eq(row_of(base, self.lanes)), self.word.eq(0)]
