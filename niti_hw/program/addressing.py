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


def pool_walk(g: Geometry) -> np.ndarray:
    """(N*OH*OW*C, KH*KW) input offsets a pooling engine reads: one row per pooled word in NHWC
    order, its window's elements in (kh, kw) order (the offsets golden `MaxPool2d` numbers);
    PADDING where the window covers the zero border. The im2col walk, channel by channel."""
    kernel = g.kernel_h * g.kernel_w
    indices = im2col_indices(g).reshape(g.windows, kernel, g.channels)
    return indices.transpose(0, 2, 1).reshape(g.windows * g.channels, kernel)


def gather_walk(g: Geometry, columns: bool) -> tuple[np.ndarray, np.ndarray]:
    """The transposed walk of COL2IM and POOL_BACKWARD: for each input word (NHWC order), the
    ceil(KH/stride) x ceil(KW/stride) windows that may cover it, in (di, dj) order, window
    (qy - di, qx - dj) and kernel position (ry + di*stride, rx + dj*stride) where
    (qy, ry) = divmod(y + padding, stride) (x likewise).

    Returns (addresses, offsets), each (N*H*W*C, candidates): the word the candidate reads,
    PADDING where it is no window or does not cover the input word; the input word's offset
    kh * KW + kw in that window. `columns`: addresses into im2col columns (window * KH*KW*C +
    offset * C + c, COL2IM's), else into a pooled NHWC tensor (window * C + c, POOL_BACKWARD's
    errors and winners)."""
    s = g.stride
    n, y, x, c, di, dj = np.ogrid[:g.batch, :g.height, :g.width, :g.channels,
                                  :-(-g.kernel_h // s), :-(-g.kernel_w // s)]
    qy, ry = divmod(y + g.padding, s)
    qx, rx = divmod(x + g.padding, s)
    oh, ow, kh, kw = qy - di, qx - dj, ry + di * s, rx + dj * s
    inside = ((kh < g.kernel_h) & (kw < g.kernel_w) & (oh >= 0) & (oh < g.out_height)
              & (ow >= 0) & (ow < g.out_width))
    window = (n * g.out_height + oh) * g.out_width + ow
    offset = kh * g.kernel_w + kw
    address = window * g.depth + offset * g.channels + c if columns else window * g.channels + c
    words = g.batch * g.height * g.width * g.channels
    shape = np.broadcast_shapes(inside.shape, address.shape, offset.shape)
    return (np.where(inside, address, PADDING).reshape(words, -1),
            np.broadcast_to(offset, shape).reshape(words, -1))
