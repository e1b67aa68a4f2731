"""Stream payload layouts shared by the RTL units and the benches (one definition of each field)."""

from __future__ import annotations

from amaranth.hdl import signed, unsigned
from amaranth.lib import data

from niti_hw.golden import MAX_SHIFT
from niti_hw.params import HardwareParams

INT8 = signed(8)
INT32 = signed(32)
# Shifts 0..32 (SPEC: k = 0 saturates only; k = 32 is the widest an int32 can need).
SHIFT = unsigned(MAX_SHIFT.bit_length())


def operand_layout(p: HardwareParams) -> data.StructLayout:
    """One reduction step k of a tile: column k of A (rows values), row k of B (cols values)."""
    return data.StructLayout({
        "a": data.ArrayLayout(INT8, p.rows),
        "b": data.ArrayLayout(INT8, p.cols),
        "last": 1,
    })


def result_row_layout(p: HardwareParams) -> data.StructLayout:
    """One row of an output tile; `last` marks the tile's final row."""
    return data.StructLayout({
        "c": data.ArrayLayout(signed(p.acc_bits), p.cols),
        "last": 1,
    })


def lanes_layout(p: HardwareParams) -> data.StructLayout:
    """`lanes` int32 values of a tensor; `last` marks the tensor's final beat."""
    return data.StructLayout({
        "data": data.ArrayLayout(INT32, p.lanes),
        "last": 1,
    })


def round_in_layout(p: HardwareParams) -> data.StructLayout:
    """Rounding input: values, the tensor's shift k, which lanes hold elements, end of tensor."""
    return data.StructLayout({
        "data": data.ArrayLayout(INT32, p.lanes),
        "k": SHIFT,
        "keep": p.lanes,
        "last": 1,
    })


def round_out_layout(p: HardwareParams) -> data.StructLayout:
    """Rounded values with `keep`, `last` and the shift `k` they were rounded with, passed along."""
    return data.StructLayout({
        "data": data.ArrayLayout(INT8, p.lanes),
        "keep": p.lanes,
        "last": 1,
        "k": SHIFT,
    })


BITWIDTH = unsigned(MAX_SHIFT.bit_length())  # B(V) in 0..32


def datapath_out_layout(p: HardwareParams) -> data.StructLayout:
    """Rounded tile values plus the shift k applied to the tile (the exponent increment)."""
    return data.StructLayout({
        "data": data.ArrayLayout(INT8, p.lanes),
        "k": SHIFT,
        "last": 1,
    })
