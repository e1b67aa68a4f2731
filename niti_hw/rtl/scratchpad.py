"""Tensor scratchpad: a layer's whole int32 output in row-major order, written a tile row at a time
and read back `lanes` consecutive elements at a time.

Element e of the flattened tensor lives in bank e % cols at address e // cols: `cols` one-int32-wide
memories (block RAM on an FPGA). A tile row is `cols` consecutive elements starting anywhere, so
it touches every bank at most once: bank b takes row element (b - e0) mod cols at address
e0 // cols, plus one where b < e0 mod cols. A read beat b is `lanes` consecutive elements, all in
one bank group at one address.

Both sides are registered around the block RAMs (timing: the RAMs sit in fixed columns far from
the logic): a write's per-bank address, data and enable are computed one cycle and land the next;
a read's data is registered after the RAM, SCRATCHPAD_READ_LATENCY cycles in all.
"""

from __future__ import annotations

from amaranth.hdl import Const, Module, Signal, unsigned
from amaranth.lib import data, memory, wiring
from amaranth.lib.wiring import In, Out

from niti_hw.params import HardwareParams
from niti_hw.perf.timing import SCRATCHPAD_READ_LATENCY
from niti_hw.rtl.layouts import INT32


def check_scratchpad_params(p: HardwareParams) -> None:
    """The bank index and the read group are bit slices, so cols (and so lanes) is a power of two."""
    if p.cols & (p.cols - 1):
        raise ValueError(f"the tensor datapath needs cols to be a power of two (element e lives "
                         f"in bank e % cols); got cols={p.cols}, try {1 << (p.cols.bit_length() - 1)}")
    if p.tensor_buffer_words % p.cols:
        raise ValueError(f"tensor_buffer_words must be a multiple of cols={p.cols} (one bank per "
                         f"column); got {p.tensor_buffer_words}")


def element_bits(p: HardwareParams) -> int:
    """Width of an element index 0..tensor_buffer_words."""
    return p.tensor_buffer_words.bit_length()


class Scratchpad(wiring.Component):
    """Write: `wr_row` (cols int32) at flat element `wr_e0`, its first `wr_count` elements kept,
    when `wr_en`; it lands in the RAM one cycle later. Read: a two-stage pipeline (RAM, then a
    register) that advances when `rd_en` is high: beat `rd_beat` (elements rd_beat*lanes ...)
    issued on an advancing cycle is on `rd_data` after SCRATCHPAD_READ_LATENCY advancing cycles,
    and held while `rd_en` is low."""

    def __init__(self, params: HardwareParams):
        check_scratchpad_params(params)
        self.params = params
        bits = element_bits(params)
        super().__init__({
            "wr_en": In(1),
            "wr_e0": In(unsigned(bits)),
            "wr_count": In(range(params.cols + 1)),
            "wr_row": In(data.ArrayLayout(INT32, params.cols)),
            "rd_en": In(1),
            "rd_beat": In(unsigned(bits)),
            "rd_data": Out(data.ArrayLayout(INT32, params.lanes)),
        })

    def elaborate(self, platform):
        p = self.params
        C, L = p.cols, p.lanes
        col_bits, group_bits = (C - 1).bit_length(), (C // L - 1).bit_length()
        m = Module()
        rot = self.wr_e0[:col_bits] if col_bits else Const(0, 1)
        base = self.wr_e0[col_bits:]
        group = Signal(max(group_bits, 1))
        with m.If(self.rd_en):
            m.d.sync += group.eq(self.rd_beat[:group_bits] if group_bits else 0)
        banks = []
        for b in range(C):
            bank = memory.Memory(shape=INT32, depth=p.tensor_buffer_words // C, init=[])
            m.submodules[f"bank{b}"] = bank
            wr, rd = bank.write_port(), bank.read_port()
            column = Signal(range(C), name=f"column{b}")  # the row element this bank takes
            m.d.comb += column.eq((b - rot)[:col_bits] if col_bits else 0)
            m.d.sync += [  # registered in front of the RAM
                wr.addr.eq(base + (rot > b)),
                wr.data.eq(self.wr_row[column]),
                wr.en.eq(self.wr_en & (column < self.wr_count)),
            ]
            m.d.comb += [rd.addr.eq(self.rd_beat >> group_bits), rd.en.eq(self.rd_en)]
            banks.append(rd.data)
        selected = Signal.like(self.rd_data)
        with m.Switch(group):
            for g in range(C // L):
                with m.Case(g):
                    m.d.comb += [selected[n].eq(banks[g * L + n]) for n in range(L)]
        for stage in range(SCRATCHPAD_READ_LATENCY - 1):  # registers behind the RAM
            held = Signal.like(self.rd_data, name=f"rd_stage{stage}")
            with m.If(self.rd_en):
                m.d.sync += held.eq(selected)
            selected = held
        m.d.comb += self.rd_data.eq(selected)
        return m
