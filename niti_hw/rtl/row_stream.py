"""A streaming engine's two ends on the banks: row reads issued one per cycle, and result rows
written back, the last row of a tensor cropped to its `m` values.

Parts of an engine's module (as `Replay` is of the datapath's), not components: each is a few
counters the engine starts with its instruction, and a component boundary would only add ports.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal

from niti_hw.perf.timing import BANK_READ_LATENCY
from niti_hw.program.isa import TENSOR_FIELDS
from niti_hw.rtl.banks import row_layout
from niti_hw.rtl.shift_round import low_mask

M_BITS = dict(TENSOR_FIELDS)["m"]


def row_of(base, lanes: int):
    """The bank row a tensor base (a multiple of `lanes`) starts at."""
    return base >> (lanes.bit_length() - 1)


class TensorRows:
    """Beats and the final beat's lane mask of an `m`-value tensor: ceil(m / lanes) rows, at least
    one (an empty tensor is one row with no lane kept, so every engine runs the same way)."""

    def __init__(self, lanes: int):
        self.lanes = lanes
        self.final_keep = Signal(lanes, name="final_keep")

    def last_beat(self, m_values):
        """Index of the tensor's last row: ceil(m / lanes) - 1, 0 for an empty tensor."""
        return Mux(m_values == 0, 0, (m_values - 1) >> (self.lanes.bit_length() - 1))

    def start(self, m_values) -> list:
        """Statements that load the final keep of an `m_values` tensor."""
        L = self.lanes
        shift = L.bit_length() - 1
        rest = m_values[:shift] if shift else 0
        return [self.final_keep.eq(Mux(m_values == 0, 0,
                                       Mux(rest == 0, (1 << L) - 1, low_mask(rest, L))))]

    def mask(self, last):
        """Lanes to write of a beat: every lane, or the tensor's final keep on its last beat."""
        return Mux(last, self.final_keep, (1 << self.lanes) - 1)


class RowReads:
    """Reads of one tensor on `ports` (each its own bank and base, the same row offsets), one row
    per cycle from the cycle after `start`. `valid` and `last` of each beat come
    `BANK_READ_LATENCY` cycles after its read, beside the ports' `data`."""

    def __init__(self, m: Module, ports):
        self.active = Signal(name="reads_active")
        self.left = Signal(M_BITS, name="reads_left")  # rows after this one
        self.banks = [Signal.like(port.bank, name=f"read{n}_bank") for n, port in enumerate(ports)]
        self.rows = [Signal.like(port.row, name=f"read{n}_row") for n, port in enumerate(ports)]
        issue_last = self.left == 0
        valid, last = self.active, self.active & issue_last
        for stage in range(BANK_READ_LATENCY):
            valid_next = Signal(name=f"reads_valid{stage}")
            last_next = Signal(name=f"reads_last{stage}")
            m.d.sync += [valid_next.eq(valid), last_next.eq(last)]
            valid, last = valid_next, last_next
        self.valid, self.last = valid, last
        for port, bank, row in zip(ports, self.banks, self.rows):
            m.d.comb += [port.en.eq(self.active), port.bank.eq(bank), port.row.eq(row)]
        with m.If(self.active):
            m.d.sync += [self.left.eq(self.left - 1)] + [row.eq(row + 1) for row in self.rows]
            with m.If(issue_last):
                m.d.sync += self.active.eq(0)

    def start(self, rows: TensorRows, m_values, places) -> list:
        """Statements that start the reads of an `m_values` tensor at (bank, base) `places`, one
        per port."""
        lanes = rows.lanes
        return [self.active.eq(1), self.left.eq(rows.last_beat(m_values))] + [
            statement for (bank, base), port_bank, row in zip(places, self.banks, self.rows)
            for statement in (port_bank.eq(bank), row.eq(row_of(base, lanes)))]


class RowWrites:
    """Result beats into rows of one tensor on `port`: each beat with `valid` is written to the
    next row, cropped to the tensor's `m` values on the beat with `last`, which also raises
    `done` (the cycle of the last write)."""

    def __init__(self, m: Module, rows: TensorRows, port, valid, last, data, name: str):
        self.bank = Signal.like(port.bank, name=f"{name}_bank")
        self.row = Signal.like(port.row, name=f"{name}_row")
        m.d.comb += [port.en.eq(valid), port.bank.eq(self.bank), port.row.eq(self.row),
                     port.data.eq(data), port.mask.eq(rows.mask(last))]
        with m.If(valid):
            m.d.sync += self.row.eq(self.row + 1)
        self.done = valid & last

    def start(self, bank, base, lanes: int) -> list:
        return [self.bank.eq(bank), self.row.eq(row_of(base, lanes))]


def widen(m: Module, values, p, name: str):
    """`lanes` values (int8 or 1-bit) as a bank row of int32 values, each sign- or zero-extended."""
    row = Signal(row_layout(p), name=name)
    m.d.comb += [row[n].eq(values[n]) for n in range(p.lanes)]
    return row
