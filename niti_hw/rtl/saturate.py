"""SPEC's symmetric saturation in gates: a signed value clamped to +-(2**(bits-1) - 1)."""

from __future__ import annotations

from amaranth.hdl import Mux

from niti_hw.golden.numbers import signed_limit


def out_of_range(value, bits: int):
    """(over, under): signed `value` is >= 2**(bits-1) or <= -2**(bits-1).

    Read from OR/AND trees over the bits above the result rather than two full-width compares:
    two carry chains in a row were the critical path of the rounding and the weight-update units.
    """
    sign, upper = value[-1], value[bits - 1:]
    return ~sign & upper.any(), sign & ~(upper.all() & value[:bits - 1].any())


def clamp(over, under, low, bits: int):
    """The saturated value from `out_of_range`'s flags and the low `bits` bits of the value."""
    limit = signed_limit(bits)
    return Mux(over, limit, Mux(under, -limit, low.as_signed()))


def saturate(value, bits: int):
    """`value` (signed, wider than `bits`) clamped to +-signed_limit(bits): golden `saturate`."""
    return clamp(*out_of_range(value, bits), value[:bits], bits)
