"""Address generators: where in a bank each operand value of an instruction lives.

These are the walks the RTL's address generators are to make, defined once as index arrays:
the reference machine gathers through them, and RTL benches can compare an address stream
against them. No arithmetic on the values happens here (that is `niti_hw.golden`'s).
"""

from __future__ import annotations

import numpy as np

from niti_hw.program.isa import Geometry

PADDING = -1
"""Index of a window position that falls in the zero padding (no memory read; the value is 0)."""


def im2col_indices(g: Geometry) -> np.ndarray:
    """(N*OH*OW, KH*KW*C) offsets into the NHWC input of every im2col entry, rows in (n, oh, ow)
    order and columns in (kh, kw, c) order as the golden `Conv2d` builds them; PADDING where
    the window covers the zero border."""
    n, oh, ow, kh, kw, c = np.ogrid[:g.batch, :g.out_height, :g.out_width, :g.kernel_h,
                                    :g.kernel_w, :g.channels]
    row = oh * g.stride + kh - g.padding
    col = ow * g.stride + kw - g.padding
    inside = (row >= 0) & (row < g.height) & (col >= 0) & (col < g.width)
    offset = ((n * g.height + row) * g.width + col) * g.channels + c
    return np.where(inside, offset, PADDING).reshape(g.windows, g.depth)


def gather(values: np.ndarray, indices: np.ndarray) -> np.ndarray:
    """values[indices] with 0 where an index is PADDING."""
    picked = values[np.maximum(indices, 0)]
    return np.where(indices == PADDING, np.zeros((), values.dtype), picked)
