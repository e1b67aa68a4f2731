"""Value-level model of the NITI datapath: what the array and its post-processing compute.

The golden model says what NITI training computes with an ideal int32 accumulator and one bitwidth
per tensor. This package computes what a given piece of hardware produces instead: an accumulator
of `acc_bits` that saturates, summing in the array's order, and an exponent chosen per tensor, per
array tile, or predicted from the previous step. It never restates the arithmetic: every B(V),
R(x, k, mode) and saturation is a call into `niti_hw.golden`, except the accumulator's clamp after
every addition, which a compiled loop must inline (tested against golden's `saturate` step by
step). With an int32 accumulator and the whole-tensor exponent it returns the golden integers bit
for bit.
"""

from .accumulator import clamped_matmul, saturating_matmul
from .exponent import EXPONENTS, narrow_per_tile, tile_bitwidths
from .policy import DatapathPolicy, SiteStats
from .sites import SiteLayer, with_sites

__all__ = ["EXPONENTS", "DatapathPolicy", "SiteLayer", "SiteStats", "clamped_matmul",
           "narrow_per_tile", "saturating_matmul", "tile_bitwidths", "with_sites"]
