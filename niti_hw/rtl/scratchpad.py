"""Tensor scratchpad: a layer's whole int32 output in row-major order, written a tile row at a time
and read back `lanes` consecutive elements at a time.

Element e of the flattened tensor lives in bank e % cols at address e // cols: `cols` int32-wide
banks (four byte-wide block RAMs each on an FPGA, see BYTES). A tile row is `cols` consecutive
elements starting anywhere, so it touches every bank at most once: bank b takes row element
(b - e0) mod cols at address e0 // cols, plus one where b < e0 mod cols. A read beat b is `lanes`
consecutive elements, all in one bank group at one address.

Both sides are registered around the block RAMs (timing: the RAMs sit at fixed sites far from
the logic): a write's per-bank address, data and enable are computed one cycle and land the next;
a read's data is registered after the RAM, SCRATCHPAD_READ_LATENCY cycles in all.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Signal, unsigned
from amaranth.lib import data, memory, wiring
from amaranth.lib.wiring import In, Out

from niti_hw.params import HardwareParams
from niti_hw.perf.timing import SCRATCHPAD_READ_LATENCY
from niti_hw.rtl.layouts import INT32


BYTES = 4
"""Each bank is four byte-wide memories: one 2048 x 8 block RAM apiece on ECP5 (DP16KD in its x9
mode), so a read comes straight out of a block RAM into the register behind it. As one 32-bit
memory the bank was a depth cascade of four RAMs with a 4:1 mux between them and that register:
that mux after the RAM's 5.8 ns clock-to-out was the top's slowest path."""


NO_COLLISIONS = {"no_rw_check": 1}
"""The scratchpad is written during a tensor's GEMM and read during its replay, never both in one
cycle, so a read never meets a write to its address. Said to synthesis, this spares the address
compare and bypass register yosys otherwise builds around every block RAM to give Amaranth's
read-old-data-on-collision rule, a mux between the RAM and the register behind it."""


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
    when `wr_en`; it lands in the RAM one cycle later. Read: a pipeline (the RAM, then registers)
    that advances when `rd_en` is high: beat `rd_beat` (elements rd_beat*lanes ...) issued on an
    advancing cycle is on `rd_data` after SCRATCHPAD_READ_LATENCY advancing cycles, and held while
    `rd_en` is low."""

    def __init__(self, params: HardwareParams):
        check_scratchpad_params(params)
        self.params = params
        self.bank_depth = params.tensor_buffer_words // params.cols
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
        banks = []
        for b in range(C):
            column = Signal(range(C), name=f"column{b}")  # the row element this bank takes
            m.d.comb += column.eq((b - rot)[:col_bits] if col_bits else 0)
            # registered in front of the RAM; address and data need no reset
            addr = Signal(range(self.bank_depth), name=f"wr_addr{b}", reset_less=True)
            word = Signal(32, name=f"wr_data{b}", reset_less=True)
            we = Signal(name=f"wr_en{b}")
            m.d.sync += [
                addr.eq(base + (rot > b)),
                word.eq(self.wr_row[column]),
                we.eq(self.wr_en & (column < self.wr_count)),
            ]
            data_out = []
            for byte in range(BYTES):
                ram = memory.Memory(shape=8, depth=self.bank_depth, init=[], attrs=NO_COLLISIONS)
                m.submodules[f"bank{b}_byte{byte}"] = ram
                wr, rd = ram.write_port(), ram.read_port()
                m.d.comb += [wr.addr.eq(addr), wr.data.eq(word[8 * byte:8 * byte + 8]),
                             wr.en.eq(we),
                             rd.addr.eq(self.rd_beat >> group_bits), rd.en.eq(self.rd_en)]
                data_out.append(rd.data)
            banks.append(Cat(*data_out))
        selected = Signal.like(self.rd_data)
        if group_bits:  # cols / lanes beats per bank row: pick this beat's group of banks
            group = Signal(group_bits)
            with m.If(self.rd_en):
                m.d.sync += group.eq(self.rd_beat[:group_bits])
            with m.Switch(group):
                for g in range(C // L):
                    with m.Case(g):
                        m.d.comb += [selected[n].eq(banks[g * L + n]) for n in range(L)]
        else:  # one beat per bank row: the RAMs feed the register behind them directly
            m.d.comb += [selected[n].eq(banks[n]) for n in range(L)]
        for stage in range(SCRATCHPAD_READ_LATENCY - 1):  # registers behind the RAM
            held = Signal.like(self.rd_data, name=f"rd_stage{stage}", reset_less=True)
            with m.If(self.rd_en):
                m.d.sync += held.eq(selected)
            selected = held
        m.d.comb += self.rd_data.eq(selected)
        return m
