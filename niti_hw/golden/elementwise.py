"""The per-element arithmetic of SPEC's rounding and LFSR, written with operators only.

Each function here takes whole arrays (numpy or torch: `shift_round` and `LfsrLanes` apply them
so) or single integers (the compiled loops of `compiled` apply them element by element): one
definition for both.
"""

from __future__ import annotations

from .numbers import INT8_MAX

LFSR_TAPS = 0x80200003


def nearest_quotient(values, k: int):
    """floor((x + 2**(k-1)) / 2**k): round half up, before saturation (k >= 1)."""
    return (values + (1 << (k - 1))) >> k


def pseudo_round_up(fraction, k: int):
    """The paper's Algorithm 2: round up when the top half of f beats its bottom half."""
    bits = k
    if bits % 2:
        fraction = fraction >> 1
        bits -= 1
    half = bits // 2
    return (fraction >> half) > (fraction & ((1 << half) - 1))


def stochastic_round_up(fraction, draw):
    """Round up with probability f / 2**k: when the fraction beats the lane's k random bits."""
    return fraction > draw


def lfsr_step(state):
    """One step of a 32-bit Galois LFSR (states 0..2**32 - 1, never 0): shift right, and XOR the
    taps in when the bit shifted out was 1."""
    return (state >> 1) ^ ((state & 1) * LFSR_TAPS)


def int8_clamp(values):
    """Saturate to [-127, 127] (SPEC): the shift's result on its way to int8. For int32/int64
    values (the int8 range itself would wrap in `values - 127`)."""
    return (values - (values - INT8_MAX) * (values > INT8_MAX)
            - (values + INT8_MAX) * (values < -INT8_MAX))


def signed_round(value, magnitude, k: int, up):
    """R(x, k) of the magnitude modes (pseudo, stochastic): |x| >> k plus the round-up decision,
    saturated at 127, with the sign of x restored (so the rounding is unbiased for x < 0 too)."""
    quotient = (magnitude >> k) + up
    quotient = quotient - (quotient - INT8_MAX) * (quotient > INT8_MAX)
    return quotient - 2 * quotient * (value < 0)
