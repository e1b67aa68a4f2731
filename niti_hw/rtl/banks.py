"""The core's on-chip memories: int8 activations, errors and weights, int32 tensor buffer.

A bank row is `lanes` values, so a tensor (its base a multiple of `lanes`, `niti_hw.program`'s
allocation) starts at a row and an engine streams it a row per cycle. Sizes are
`niti_hw.program.memory.bank_words`, the reference machine's.
"""

from __future__ import annotations

from amaranth.hdl import Cat, MemoryData, Module, Signal, unsigned
from amaranth.lib import data, memory, wiring
from amaranth.lib.wiring import In, Out

from niti_hw.params import HardwareParams
from niti_hw.perf.timing import BANK_READ_LATENCY, BANK_WRITE_LATENCY
from niti_hw.program.isa import Bank
from niti_hw.program.memory import bank_words
from niti_hw.rtl.bank_ram import fits_x36, x36_read_copy
from niti_hw.rtl.layouts import INT32
from niti_hw.rtl.target import ECP5, target_family

BANK_BITS = (len(Bank) - 1).bit_length()
def bank_value_bits(weight_bits: int = 8) -> dict[Bank, int]:
    """Bits of a value in each bank: the weight bank as wide as the stored weights (their int8
    copies, for the GEMMs, sign-extended in a word each, as `bank_words` counts them)."""
    return {Bank.ACT: 8, Bank.ERR: 8, Bank.WEIGHT: weight_bits, Bank.ACC: 32}


BANK_VALUE_BITS = bank_value_bits()
"""Bits of a value in each bank with 8-bit weights."""
READ_PORTS = 2
"""Rows an engine reads per cycle: two operands (RELU_BACKWARD's errors and mask, UPDATE's
gradients and weights), from any banks, one the same."""
WRITE_PORTS = 2
"""Rows an engine writes per cycle: a RELU's result and its mask, in two banks."""

if BANK_READ_LATENCY != 3 or BANK_WRITE_LATENCY != 1:
    raise RuntimeError("rtl/banks.py reads through the RAM, its output register and the select "
                       "register and writes through a register: perf.timing's BANK_READ_LATENCY "
                       "and BANK_WRITE_LATENCY must say so")


def check_core_params(p: HardwareParams, weight_bits: int = 8) -> None:
    """A row index is a word address shifted by log2(lanes), so lanes is a power of two, and
    every bank holds whole rows."""
    if p.lanes & (p.lanes - 1):
        raise ValueError(f"the core needs lanes to be a power of two (a bank row is `lanes` "
                         f"values); got lanes={p.lanes}")
    for bank, words in bank_words(p, weight_bits).items():
        if words % p.lanes:
            raise ValueError(f"the {bank.name.lower()} bank's {words} values are no whole number "
                             f"of {p.lanes}-value rows")


def bank_rows(p: HardwareParams, weight_bits: int = 8) -> dict[Bank, int]:
    return {bank: words // p.lanes for bank, words in bank_words(p, weight_bits).items()}


def word_bits(p: HardwareParams) -> int:
    """Bits of a word address in the largest bank (wider weights only make the weight bank
    smaller): any tensor the core runs, and any word of it, lies below 2**word_bits."""
    return max(bank_words(p).values()).bit_length()


def row_shape(p: HardwareParams):
    """A row index of the deepest bank (wider weights only make the weight bank shallower)."""
    return unsigned(max(max(bank_rows(p).values()) - 1, 1).bit_length())


def row_layout(p: HardwareParams) -> data.ArrayLayout:
    """A row as ports carry it: `lanes` int32 values (narrower banks sign-extend on reads and keep
    their low bits on writes)."""
    return data.ArrayLayout(INT32, p.lanes)


def read_port_signature(p: HardwareParams) -> wiring.Signature:
    """Row `row` of `bank` when `en`; `data` BANK_READ_LATENCY cycles later."""
    return wiring.Signature({
        "en": Out(1), "bank": Out(BANK_BITS), "row": Out(row_shape(p)), "data": In(row_layout(p)),
    })


def write_port_signature(p: HardwareParams) -> wiring.Signature:
    """`data` into row `row` of `bank` when `en`, lane n only where `mask` bit n is set (a
    tensor's partial last row leaves the rest of the row as it was)."""
    return wiring.Signature({
        "en": Out(1), "bank": Out(BANK_BITS), "row": Out(row_shape(p)), "data": Out(row_layout(p)),
        "mask": Out(p.lanes),
    })


class Banks(wiring.Component):
    """Four memories of `lanes`-value rows behind `READ_PORTS` read and `WRITE_PORTS` write ports,
    each port naming its bank.

    Read: the RAM's synchronous read, its output register (nothing in front of it, so a block
    RAM's slow clock-to-out reaches only a register), then the bank select and sign extension into
    a register: `data` is valid `BANK_READ_LATENCY` (3) cycles after the request, one row per port
    per cycle.
    Write: address, data and lane mask registered, in the RAM `BANK_WRITE_LATENCY` (1) cycle later.
    Two writes to one bank in one cycle are the caller's to avoid (the sequencer refuses them);
    port 0 wins. A read and a write of one row in one cycle read the old row. Every bank has two
    read ports, so a synthesised bank is two block RAM copies (one per read port); on ECP5 each
    copy is DP16KD instances whose own output register is the read's second stage
    (`bank_ram.x36_read_copy`), elsewhere a memory and a fabric register.

    `data` holds each bank's `MemoryData` (rows as `lanes * bits` unsigned words, lane n in bits
    n*bits..., `value_bits[bank]` bits: `bank_value_bits(weight_bits)`), so a testbench can look
    into the banks while a program runs. The weight bank holds `bank_words(params, weight_bits)`.
    """

    def __init__(self, params: HardwareParams, weight_bits: int = 8):
        check_core_params(params, weight_bits)
        self.params, self.value_bits = params, bank_value_bits(weight_bits)
        self.data = {bank: MemoryData(shape=unsigned(params.lanes * self.value_bits[bank]),
                                      depth=rows, init=[])
                     for bank, rows in bank_rows(params, weight_bits).items()}
        super().__init__({
            "rd": In(read_port_signature(params)).array(READ_PORTS),
            "wr": In(write_port_signature(params)).array(WRITE_PORTS),
        })

    def elaborate(self, platform):
        p, L = self.params, self.params.lanes
        m = Module()
        rows = {index: {} for index in range(READ_PORTS)}  # each read port's row from each bank
        for bank in Bank:
            bits, name = self.value_bits[bank], bank.name.lower()
            written = self._write(m, bank, bits)
            if target_family(platform) == ECP5 and fits_x36(bits):
                outs = [x36_read_copy(m, f"{name}_rd{index}", bits, L, self.data[bank].depth,
                                      *written, port.row, port.en & (port.bank == bank))
                        for index, port in enumerate(self.rd)]
            else:
                outs = self._memory(m, bank, bits, written)
            for index, out in enumerate(outs):
                wide = Signal(row_layout(p), name=f"rd{index}_{name}")
                m.d.comb += [wide[n].eq(out[n * bits:(n + 1) * bits].as_signed())
                             for n in range(L)]  # sign-extending
                rows[index][bank] = wide
        for index, port in enumerate(self.rd):
            picked = port.bank
            for stage in range(BANK_READ_LATENCY - 1):  # the bank travels beside the RAM's read
                delayed = Signal(BANK_BITS, name=f"rd{index}_bank{stage}")
                m.d.sync += delayed.eq(picked)
                picked = delayed
            held = Signal(row_layout(p), name=f"rd{index}_data", reset_less=True)
            with m.Switch(picked):
                for bank in Bank:
                    with m.Case(bank):
                        m.d.sync += held.eq(rows[index][bank])
            m.d.comb += port.data.eq(held)
        return m

    def _memory(self, m: Module, bank: Bank, bits: int, written) -> list:
        """Portable form: one memory with a read port per bank port, each read into a register
        of its own (the RAM's output register); one block RAM copy per read port in synthesis."""
        m.submodules[bank.name.lower()] = ram = memory.Memory(data=self.data[bank])
        writer = ram.write_port(granularity=bits)
        addr, word, mask = written
        m.d.comb += [writer.addr.eq(addr), writer.data.eq(word), writer.en.eq(mask)]
        outs = []
        for index, port in enumerate(self.rd):
            reader = ram.read_port()
            m.d.comb += [reader.addr.eq(port.row), reader.en.eq(port.en & (port.bank == bank))]
            out = Signal.like(reader.data, name=f"rd{index}_{bank.name.lower()}_out",
                              reset_less=True)
            m.d.sync += out.eq(reader.data)
            outs.append(out)
        return outs

    def _write(self, m: Module, bank: Bank, bits: int) -> tuple:
        """Registered: the first write port that names `bank` this cycle lands next cycle.
        Returns the RAM's row address, row and lane mask."""
        L, name = self.params.lanes, bank.name.lower()
        addr = Signal(row_shape(self.params), name=f"{name}_wr_addr", reset_less=True)
        word = Signal(L * bits, name=f"{name}_wr_data", reset_less=True)
        en = Signal(L, name=f"{name}_wr_en")
        m.d.sync += en.eq(0)
        for port in reversed(self.wr):  # port 0 last: it wins
            with m.If(port.en & (port.bank == bank)):
                m.d.sync += [addr.eq(port.row), en.eq(port.mask),
                             word.eq(Cat(*[port.data[n][:bits] for n in range(L)]))]
        return addr, word, en
