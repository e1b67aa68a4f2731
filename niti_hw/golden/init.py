"""Weight initialisation, wide weight storage and dataset quantisation (SPEC: Initialisation and data).

Floats appear here and only here: once at initialisation and once when data is turned into int8.
"""

from __future__ import annotations

import math

import numpy as np

from .numbers import (
    INT8_MAX, as_int_array, count, namespace, saturate, signed_limit, value_range,
)
from .rounding import shift_round
from .tensor import QTensor

ACC_BITS_RANGE = (8, 24)
PIXEL_EXPONENT = -7
"""uint8 pixels p map to (p - mean) >> 1, so one int8 step is 2/256 of full scale: 2**-7."""


def _check_acc_bits(acc_bits: int) -> int:
    low, high = ACC_BITS_RANGE
    if isinstance(acc_bits, bool) or not isinstance(acc_bits, (int, np.integer)):
        raise TypeError(f"acc_bits must be an integer in {low}..{high}; got {acc_bits!r}")
    if not low <= acc_bits <= high:
        raise ValueError(f"acc_bits must be in {low}..{high} (8 is plain int8); got {acc_bits}")
    return int(acc_bits)


def quantise_float(x: np.ndarray, bits: int = 8) -> QTensor:
    """s = ceil(log2(max|x|)) - (bits - 1), v = round(x / 2**s) saturated to +-(2**(bits-1) - 1)."""
    x = np.asarray(x, dtype=np.float64)
    largest = float(np.max(np.abs(x))) if x.size else 0.0
    if not math.isfinite(largest):
        raise ValueError("cannot quantise a tensor holding inf or nan")
    if largest == 0.0:
        return QTensor(np.zeros(x.shape, dtype=np.int32), 0)
    exp = math.ceil(math.log2(largest)) - (bits - 1)
    values = saturate(np.rint(x / 2.0**exp), signed_limit(bits)).astype(np.int32)
    return QTensor(values, exp)


def xavier_uniform(shape: tuple[int, ...], fan_in: int, fan_out: int, rng: np.random.Generator):
    """Glorot/Xavier uniform floats, the initial weights before quantisation."""
    bound = math.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-bound, bound, size=shape)


class IntegerWeights:
    """A layer's weights: W of `acc_bits` bits with fixed exponent s_W, seen as int8 by the datapath.

    With acc_bits = 8 this is the plain NITI case; wider W (12, 16) accumulates small updates
    that an int8 weight would lose, as in the paper's ImageNet rows.
    """

    def __init__(self, values, exp: int, acc_bits: int = 8):
        self.acc_bits = _check_acc_bits(acc_bits)
        self.limit = signed_limit(self.acc_bits)
        values = as_int_array(values, "weights")
        xp = namespace(values)
        low, high = value_range(values) if count(values) else (0, 0)
        if max(-low, high) > self.limit:
            raise ValueError(
                f"weights of {self.acc_bits} bits must lie in [-{self.limit}, {self.limit}]"
            )
        self.values = xp.astype(values, xp.int32)
        self.exp = int(exp)

    @classmethod
    def from_float(cls, floats: np.ndarray, acc_bits: int = 8) -> "IntegerWeights":
        """Quantise float initial weights by SPEC's rule with acc_bits - 1 in place of 7."""
        acc_bits = _check_acc_bits(acc_bits)
        q = quantise_float(floats, bits=acc_bits)
        return cls(q.values, q.exp, acc_bits)

    @classmethod
    def xavier(cls, shape, fan_in: int, fan_out: int, rng, acc_bits: int = 8):
        return cls.from_float(xavier_uniform(shape, fan_in, fan_out, rng), acc_bits)

    def as_int8(self) -> QTensor:
        """w = R(W, acc_bits - 8, nearest) with exponent s_W + acc_bits - 8."""
        shift = self.acc_bits - 8
        return QTensor(shift_round(self.values, shift, "nearest"), self.exp + shift)

    def apply(self, gradient: np.ndarray) -> None:
        """W = sat(W - g) at +-(2**(acc_bits-1) - 1); the exponent never changes."""
        xp = namespace(self.values)
        updated = xp.astype(self.values, xp.int64) - as_int_array(gradient, "gradient")
        self.values = xp.astype(saturate(updated, self.limit), xp.int32)


def pixel_mean(pixels) -> int:
    """Integer mean of a uint8 image set, computed once per dataset (floor)."""
    pixels = as_int_array(pixels, "pixels")
    return int(pixels.sum(dtype=np.int64) // max(1, pixels.size))


def quantise_pixels(pixels, mean: int) -> QTensor:
    """uint8 pixels -> int8 by the integer map (p - mean) >> 1, saturated; exponent 2**-7."""
    pixels = as_int_array(pixels, "pixels")
    if pixels.size and (int(pixels.min()) < 0 or int(pixels.max()) > 255):
        raise ValueError("pixels must be uint8 values in 0..255")
    centred = (pixels.astype(np.int16) - np.int16(mean)) >> 1
    return QTensor(saturate(centred, INT8_MAX).astype(np.int8), PIXEL_EXPONENT)
