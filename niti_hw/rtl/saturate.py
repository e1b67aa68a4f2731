"""SPEC's symmetric saturation in gates: a signed value clamped to +-(2**(bits-1) - 1)."""

from __future__ import annotations

from amaranth.hdl import Mux

from niti_hw.golden.numbers import signed_limit


def saturate(value, bits: int):
    """`value` (signed, wider than `bits`) clamped to +-signed_limit(bits), the golden `saturate`.

    Read from OR/AND trees over the bits above the result rather than two full-width compares:
    two carry chains in a row were the critical path of the rounding and the weight-update units.
    """
    limit = signed_limit(bits)
    sign, upper = value[-1], value[bits - 1:]
    over = ~sign & upper.any()  # >= 2**(bits-1)
    under = sign & ~(upper.all() & value[:bits - 1].any())  # <= -2**(bits-1)
    return Mux(over, limit, Mux(under, -limit, value[:bits].as_signed()))
