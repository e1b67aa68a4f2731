"""Tensor scratchpad: a layer's whole int32 output in row-major order, written a tile row at a time
and read back `lanes` consecutive elements at a time.

Element e of the flattened tensor lives in bank e % cols at address e // cols: `cols` int32-wide
banks (four byte-wide block RAMs each on an FPGA, see BYTES). A tile row is `cols` consecutive
elements starting anywhere, so it touches every bank at most once: bank b takes row element
(b - e0) mod cols at address e0 // cols, plus one where b < e0 mod cols. A read beat b is `lanes`
consecutive elements, all in one bank group at one address.

Both sides are registered around the block RAMs (timing: the RAMs sit at fixed sites far from
the logic): a write's per-bank address, data and enable are computed one cycle and land the next;
a read's data is registered after the RAM, SCRATCHPAD_READ_LATENCY cycles in all. On ECP5 that
register is the block RAM's own output register (a DP16KD instantiated with REGMODE_B OUTREG): its
clock-to-out is 0.96 ns where the RAM array's is 5.83 ns (speed grade 6), so no route from a fixed
RAM site to a fabric flip-flop has to fit in what is left of the clock period.
"""

from __future__ import annotations

from amaranth.hdl import Cat, ClockSignal, Const, Instance, Module, Signal, unsigned
from amaranth.lib import data, memory, wiring
from amaranth.lib.wiring import In, Out

from niti_hw.params import HardwareParams
from niti_hw.perf.bram import BRAM_DATA_BYTES
from niti_hw.perf.timing import SCRATCHPAD_READ_LATENCY
from niti_hw.rtl.layouts import INT32
from niti_hw.rtl.target import ECP5, target_family


BYTES = 4
"""Each bank is four byte-wide memories: one 2048 x 8 block RAM apiece on ECP5 (DP16KD in its x9
mode), so a read comes straight out of a block RAM into the register behind it. As one 32-bit
memory the bank was a depth cascade of four RAMs with a 4:1 mux between them and that register:
that mux after the RAM's 5.8 ns clock-to-out was the top's slowest path."""


DP16KD_X9_DEPTH = BRAM_DATA_BYTES  # 2048 x 8 in x9 mode (the ninth bit unused)
DP16KD_X9_ADDR_LSB = 3  # x9 mode: address on AD13..AD3
DP16KD_ADDR_PINS = 14
DP16KD_DATA_PINS = 18

NO_COLLISIONS = {"no_rw_check": 1}
"""The scratchpad is written during a tensor's GEMM and read during its replay, never both in one
cycle, so a read never meets a write to its address. Said to synthesis, this spares the address
compare and bypass register yosys otherwise builds around every block RAM to give Amaranth's
read-old-data-on-collision rule, a mux between the RAM and the register behind it."""


def check_scratchpad_params(p: HardwareParams) -> None:
    """The bank index and the read group are bit slices, so cols (and so lanes) is a power of two;
    the drain's tile moves read flags registered a cycle after their counts, so a tile drains at
    least two rows."""
    if p.rows < 2:
        raise ValueError(f"the tensor datapath needs at least 2 array rows (its drain moves to the "
                         f"next tile at most every other cycle); got rows={p.rows}")
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
        rd_addr = self.rd_beat >> group_bits
        ram_form = self._dp16kd if self._on_dp16kd(platform) else self._memory
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
            read, stages = [], 0
            for byte in range(BYTES):
                data_out, stages = ram_form(m, f"bank{b}_byte{byte}", addr,
                                            word[8 * byte:8 * byte + 8], we, rd_addr)
                read.append(data_out)
            bank = Cat(*read)
            for stage in range(SCRATCHPAD_READ_LATENCY - stages):  # fabric registers behind it
                held = Signal(32, name=f"rd_bank{b}_stage{stage}", reset_less=True)
                with m.If(self.rd_en):
                    m.d.sync += held.eq(bank)
                bank = held
            banks.append(bank)
        selected = Signal.like(self.rd_data)
        if group_bits:  # cols / lanes beats per bank row: pick this beat's group of banks
            group = self.rd_beat[:group_bits]
            for stage in range(SCRATCHPAD_READ_LATENCY):  # the group travels with its read
                held = Signal(group_bits, name=f"rd_group{stage}")
                with m.If(self.rd_en):
                    m.d.sync += held.eq(group)
                group = held
            with m.Switch(group):
                for g in range(C // L):
                    with m.Case(g):
                        m.d.comb += [selected[n].eq(banks[g * L + n]) for n in range(L)]
        else:  # one beat per bank row
            m.d.comb += [selected[n].eq(banks[n]) for n in range(L)]
        m.d.comb += self.rd_data.eq(selected)
        return m

    def _on_dp16kd(self, platform) -> bool:
        """One DP16KD per byte holds a bank of up to 2048 words (x9 mode); deeper banks are left to
        yosys's memory mapping (a depth cascade, without the output register)."""
        return target_family(platform) == ECP5 and self.bank_depth <= DP16KD_X9_DEPTH

    def _memory(self, m: Module, name: str, wr_addr, wr_data, wr_en, rd_addr):
        """Portable form: an Amaranth memory with a synchronous read, one read stage."""
        ram = memory.Memory(shape=8, depth=self.bank_depth, init=[], attrs=NO_COLLISIONS)
        m.submodules[name] = ram
        wr, rd = ram.write_port(), ram.read_port()
        m.d.comb += [wr.addr.eq(wr_addr), wr.data.eq(wr_data), wr.en.eq(wr_en),
                     rd.addr.eq(rd_addr), rd.en.eq(self.rd_en)]
        return rd.data, 1

    def _dp16kd(self, m: Module, name: str, wr_addr, wr_data, wr_en, rd_addr):
        """ECP5 form: port A writes, port B reads through the RAM's output register, two read
        stages, both advanced by rd_en (CEB: the array read, OCEB: the output register). In x9
        mode the word address sits on AD13..AD3."""
        ports = {}
        for n in range(DP16KD_ADDR_PINS):
            bit = n - DP16KD_X9_ADDR_LSB
            for pin, address in (("ADA", wr_addr), ("ADB", rd_addr)):
                ports[f"i_{pin}{n}"] = address[bit] if 0 <= bit < len(address) else Const(0, 1)
        for n in range(DP16KD_DATA_PINS):
            ports[f"i_DIA{n}"] = wr_data[n] if n < 8 else Const(0, 1)
            ports[f"i_DIB{n}"] = Const(0, 1)
        data_out = Signal(8, name=f"{name}_dob")
        for n in range(8):
            ports[f"o_DOB{n}"] = data_out[n]
        zero, one = Const(0, 1), Const(1, 1)
        m.submodules[name] = Instance(
            "DP16KD",
            p_DATA_WIDTH_A=9, p_DATA_WIDTH_B=9, p_REGMODE_A="NOREG", p_REGMODE_B="OUTREG",
            p_RESETMODE="SYNC", p_ASYNC_RESET_RELEASE="SYNC", p_CSDECODE_A="0b000",
            p_CSDECODE_B="0b000", p_WRITEMODE_A="NORMAL", p_WRITEMODE_B="NORMAL", p_GSR="DISABLED",
            i_CLKA=ClockSignal(), i_CEA=one, i_OCEA=one, i_WEA=wr_en, i_RSTA=zero,
            i_CLKB=ClockSignal(), i_CEB=self.rd_en, i_OCEB=self.rd_en, i_WEB=zero, i_RSTB=zero,
            **{f"i_CS{port}{n}": zero for port in "AB" for n in range(3)},
            **ports,
        )
        return data_out, 2
