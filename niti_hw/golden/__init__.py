"""The golden NITI integer model: the one executable definition of SPEC.md.

The RTL, the cycle-level datapath model and the GPU path are adapters checked against these
functions bit for bit. Public API kept stable: `bitwidth`, `shift_round`, `ce_gradient`.
"""

from .gemm import check_reduction_length, int8_matmul
from .init import (
    IntegerWeights,
    pixel_mean,
    quantise_float,
    quantise_pixels,
    xavier_uniform,
)
from .layers import Conv2d, Flatten, Linear, MaxPool2d, ReLU, col2im, weight_gradient
from .loss import ce_gradient
from .network import Sequential
from .numbers import INT8_MAX, INT32_SAFE_K, MAX_SHIFT, bitwidth, saturate_int8
from .rounding import DEFAULT_LFSR_LANES, LFSR_TAPS, ROUNDING_MODES, LfsrLanes, shift_round
from .tensor import QTensor, RoundingPolicy

__all__ = [
    "DEFAULT_LFSR_LANES", "INT8_MAX", "INT32_SAFE_K", "LFSR_TAPS", "MAX_SHIFT", "ROUNDING_MODES",
    "Conv2d", "Flatten", "IntegerWeights", "LfsrLanes", "Linear", "MaxPool2d", "QTensor", "ReLU",
    "RoundingPolicy", "Sequential",
    "bitwidth", "ce_gradient", "check_reduction_length", "col2im", "int8_matmul", "pixel_mean",
    "quantise_float", "quantise_pixels", "saturate_int8", "shift_round", "weight_gradient",
    "xavier_uniform",
]
