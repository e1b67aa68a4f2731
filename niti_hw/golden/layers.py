"""NITI layers (SPEC: forward, backward, update): Linear, Conv2d, ReLU, MaxPool2d, Flatten.

Each layer keeps what its backward pass needs from the forward pass. `backward` returns the int8
error for the previous layer (None when `propagate` is False, as for the first layer) and keeps
the int32 weight gradient; `update(m_u)` rounds that gradient and applies it.
"""

from __future__ import annotations

import math

import numpy as np

from .gemm import check_reduction_length
from .init import IntegerWeights
from .numbers import bitwidth, namespace, saturate_int8
from .tensor import QTensor, RoundingPolicy


def weight_gradient(g32, m_u: int, policy: RoundingPolicy) -> np.ndarray | None:
    """SPEC 3.2: keep m_u bits of the int32 gradient; None when it is all zero."""
    if isinstance(m_u, bool) or not isinstance(m_u, (int, np.integer)) or not 1 <= m_u <= 8:
        raise ValueError(f"m_u (gradient bits) must be an integer in 1..8; got {m_u!r}")
    b = bitwidth(g32)
    if b == 0:
        return None
    if b <= m_u:
        return saturate_int8(g32)
    return policy.round(g32, b - m_u, "gradient")


def _check_input(x: QTensor, ndim: int, layer: str, channels: int | None = None) -> None:
    if not isinstance(x, QTensor):
        raise TypeError(f"{layer} takes a QTensor; got {type(x).__name__}")
    if x.values.ndim != ndim or (channels is not None and x.values.shape[-1] != channels):
        want = f"a {ndim}-D input" + (f" with {channels} features in the last axis" if channels else "")
        raise ValueError(f"{layer} expects {want}; got shape {x.values.shape}")


class WeightedLayer:
    """Common update step of Linear and Conv2d."""

    weights: IntegerWeights
    g32: np.ndarray | None = None

    def update(self, m_u: int, policy: RoundingPolicy) -> np.ndarray | None:
        """Round the kept int32 gradient to m_u bits and subtract it from the weights."""
        if self.g32 is None:
            raise RuntimeError(f"{type(self).__name__}.update called before backward")
        g = weight_gradient(self.g32.reshape(self.weights.values.shape), m_u, policy)
        self.g32 = None
        if g is not None:
            self.weights.apply(g)
        return g


class Linear(WeightedLayer):
    """y = a @ w with w of shape (in_features, out_features)."""

    def __init__(self, weights: IntegerWeights):
        if weights.values.ndim != 2:
            raise ValueError(f"Linear weights must be 2-D (in, out); got {weights.values.shape}")
        self.weights = weights
        self.in_features, self.out_features = weights.values.shape

    def output_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        if len(shape) != 2 or shape[1] != self.in_features:
            raise ValueError(f"Linear expects (N, {self.in_features}) inputs; got {shape}")
        return (shape[0], self.out_features)

    def forward(self, x: QTensor, policy: RoundingPolicy) -> QTensor:
        _check_input(x, 2, "Linear", self.in_features)
        w = self.weights.as_int8()
        self._input = x
        acc = policy.matmul(x.values, w.values)
        values, k = policy.narrow(acc, "activation")
        return QTensor(values, x.exp + w.exp + k)

    def backward(self, e: QTensor, policy: RoundingPolicy, propagate: bool = True):
        _check_input(e, 2, "Linear backward", self.out_features)
        w = self.weights.as_int8()
        previous = None
        if propagate:
            values, k = policy.narrow(policy.matmul(e.values, w.values.T), "error")
            previous = QTensor(values, e.exp + w.exp + k)
        self.g32 = policy.matmul(self._input.values.T, e.values)
        return previous


def _pad(x, rows: int, cols: int):
    """NHWC `x` with `rows` zero rows above and below H and `cols` zero columns left and right of
    W; a negative amount crops that many instead (a view when nothing is added)."""
    crop_rows, crop_cols = max(-rows, 0), max(-cols, 0)
    if crop_rows or crop_cols:
        x = x[:, crop_rows : x.shape[1] - crop_rows, crop_cols : x.shape[2] - crop_cols, :]
    rows, cols = max(rows, 0), max(cols, 0)
    if not rows and not cols:
        return x
    n, h, w, c = x.shape
    xp = namespace(x)
    out = xp.zeros((n, h + 2 * rows, w + 2 * cols, c), dtype=x.dtype, device=x.device)
    out[:, rows : rows + h, cols : cols + w, :] = x
    return out


def _windows(x, shape, stride: int):
    """The (N, OH, OW, KH, KW, C) view of every window of an NHWC array, no copy."""
    if isinstance(x, np.ndarray):
        n, h, w, c = x.strides
        return np.lib.stride_tricks.as_strided(x, shape, (n, h * stride, w * stride, h, w, c),
                                               writeable=False)
    n, h, w, c = x.stride()
    return x.as_strided(shape, (n, h * stride, w * stride, h, w, c))


def col2im(cols, input_shape, kernel: tuple[int, int], stride: int, padding: int):
    """Sum every im2col column entry back onto its input position, exactly in int32.

    `cols` is (N*OH*OW, KH*KW*C) in (kh, kw, c) column order for a (KH, KW) `kernel`; the
    result has the NHWC `input_shape`. Each position sums at most cout * ceil(KH/stride) *
    ceil(KW/stride) products of int8s, which `Conv2d.backward` checks against the int32 bound.
    """
    n, h, w, c = input_shape
    (kh, kw), p, s = kernel, padding, stride
    oh, ow = (h + 2 * p - kh) // s + 1, (w + 2 * p - kw) // s + 1
    cols = cols.reshape(n, oh, ow, kh, kw, c)
    xp = namespace(cols)
    out = xp.zeros((n, h + 2 * p, w + 2 * p, c), dtype=xp.int32, device=cols.device)
    for i in range(kh):
        for j in range(kw):
            out[:, i : i + s * oh : s, j : j + s * ow : s, :] += cols[:, :, :, i, j, :]
    if not p:
        return out
    # The crop copied once: B(V) and R then read contiguous memory, 3x faster than the view
    # (torch, VGG-small-7's first layer: 10.8 ms through the view, 3.7 ms with the copy).
    crop = out[:, p : p + h, p : p + w, :]
    return np.ascontiguousarray(crop) if isinstance(crop, np.ndarray) else crop.contiguous()


class Conv2d(WeightedLayer):
    """NHWC convolution as im2col + int8 GEMM; weights (KH, KW, Cin, Cout); any stride, padding."""

    def __init__(self, weights: IntegerWeights, stride: int = 1, padding: int = 0):
        if weights.values.ndim != 4:
            raise ValueError(
                f"Conv2d weights must be 4-D (KH, KW, Cin, Cout); got {weights.values.shape}"
            )
        if stride < 1 or padding < 0:
            raise ValueError(f"need stride >= 1 and padding >= 0; got {stride}, {padding}")
        self.weights = weights
        self.kh, self.kw, self.cin, self.cout = weights.values.shape
        self.stride, self.padding = stride, padding

    def output_size(self, height: int, width: int) -> tuple[int, int]:
        oh = (height + 2 * self.padding - self.kh) // self.stride + 1
        ow = (width + 2 * self.padding - self.kw) // self.stride + 1
        if oh < 1 or ow < 1:
            raise ValueError(
                f"Conv2d {self.kh}x{self.kw} (stride {self.stride}, padding {self.padding}) "
                f"does not fit a {height}x{width} input"
            )
        return oh, ow

    def output_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        if len(shape) != 4 or shape[3] != self.cin:
            raise ValueError(f"Conv2d expects (N, H, W, {self.cin}) inputs; got {shape}")
        return (shape[0], *self.output_size(shape[1], shape[2]), self.cout)

    def _columns(self, x, stride: int, padding: tuple[int, int]):
        """im2col: (N*OH*OW, KH*KW*C) for this layer's kernel at `stride`, with (rows, cols) of
        zero `padding` around H and W (negative: cropped); column order (kh, kw, c) matching the
        weights. The forward pass takes its input; a stride-1 backward pass takes the error.

        With C >= 4, one copy of the strided window view (each window row a contiguous run of
        KW*C values): 3-4x faster than KH*KW slice copies (LeNet-5's conv2 0.39 -> 0.10 ms in
        numpy); with fewer channels the runs are too short and the slice copies win.
        """
        padded = _pad(x, *padding)
        n, h, w, c = padded.shape
        oh, ow = (h - self.kh) // stride + 1, (w - self.kw) // stride + 1
        if c >= 4:
            return _windows(padded, (n, oh, ow, self.kh, self.kw, c), stride).reshape(
                n * oh * ow, self.kh * self.kw * c)
        cols = namespace(x).empty((n, oh, ow, self.kh, self.kw, c), dtype=x.dtype,
                                  device=x.device)
        s = stride
        for i in range(self.kh):
            for j in range(self.kw):
                cols[:, :, :, i, j, :] = padded[:, i : i + s * oh : s, j : j + s * ow : s, :]
        return cols.reshape(n * oh * ow, self.kh * self.kw * c)

    def _fold(self, cols, input_shape):
        """col2im of this layer's geometry (`col2im`); `backward` checks the int32 bound first.
        `_transposed` says where a stride-1 error takes one GEMM instead."""
        return col2im(cols, input_shape, (self.kh, self.kw), self.stride, self.padding)

    def forward(self, x: QTensor, policy: RoundingPolicy) -> QTensor:
        _check_input(x, 4, "Conv2d", self.cin)
        n, oh, ow, _ = self.output_shape(x.values.shape)
        w = self.weights.as_int8()
        self._input_shape = x.values.shape
        self._cols = self._columns(x.values, self.stride, (self.padding, self.padding))
        acc = policy.matmul(self._cols, w.values.reshape(-1, self.cout))
        values, k = policy.narrow(acc, "activation")
        return QTensor(values.reshape(n, oh, ow, self.cout), x.exp + w.exp + k)

    def _transposed(self, e, w, policy: RoundingPolicy):
        """The int32 input error, SPEC's exact transposed convolution of `e` (N, OH, OW, Cout):
        E @ W^T into columns summed by col2im, or at stride 1 the same integers from one GEMM
        over the padded error (`_padded_error_product`) where that takes no more products:
        H*W <= OH*OW (for a square kernel, a padding of at least (K-1)/2). The padded error of
        a 'valid' conv holds (H*W)/(OH*OW) times the products: LeNet-5's conv2 (5x5, 2.25x)
        took 3.3 against 2.4 ms on torch tensors that way, while VGG-small-7's 'same' 3x3 convs
        run 1.3-2.7x faster without col2im (one CPU thread). A policy that models the
        datapath's GEMMs (`fold_conv_errors`) always gets GEMM + col2im.
        """
        _, h, width, _ = self._input_shape
        if (self.stride == 1 and h * width <= e.shape[1] * e.shape[2]
                and not policy.fold_conv_errors):
            return self._padded_error_product(e, w, policy)
        cols = policy.matmul(e.reshape(-1, self.cout), w.reshape(-1, self.cout).T)
        return self._fold(cols, self._input_shape)

    def _padded_error_product(self, e, w, policy: RoundingPolicy):
        """Stride 1 only: the transposed convolution is a convolution itself, of the error
        padded by K-1-padding on each side (K = KH, KW; cropped where the padding is larger)
        against the weights turned 180 degrees with Cin and Cout swapped: one GEMM over
        KH*KW*Cout terms, no col2im. Integer sums are exact in any order, so these are the
        integers of E @ W^T folded by col2im."""
        turned = namespace(w).flip(w, axis=(0, 1)).swapaxes(2, 3).reshape(-1, self.cin)
        cols = self._columns(e, 1, (self.kh - 1 - self.padding, self.kw - 1 - self.padding))
        return policy.matmul(cols, turned).reshape(self._input_shape)

    def backward(self, e: QTensor, policy: RoundingPolicy, propagate: bool = True):
        _check_input(e, 4, "Conv2d backward", self.cout)
        w = self.weights.as_int8()
        previous = None
        if propagate:
            # Each input position sums cout * ceil(kh/stride) * ceil(kw/stride) products (at
            # stride 1 the reduction length of the one GEMM): refused before any work if int32
            # could overflow.
            overlap = -(-self.kh // self.stride) * -(-self.kw // self.stride)
            check_reduction_length(self.cout * overlap, "Conv2d transposed convolution")
            values, k = policy.narrow(self._transposed(e.values, w.values, policy), "error")
            previous = QTensor(values, e.exp + w.exp + k)
        self.g32 = policy.matmul(self._cols.T, e.values.reshape(-1, self.cout))
        return previous


class ReLU:
    """Keeps values where a > 0; the backward pass lets the error through at the same places."""

    @staticmethod
    def mask(x):
        """Where the forward pass keeps its input (and the backward pass lets errors through)."""
        return x > 0

    @staticmethod
    def apply(values, mask):
        return values * mask  # times a bool: same dtype, 0 or the value

    def output_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        return shape

    def forward(self, x: QTensor, policy: RoundingPolicy) -> QTensor:
        self._mask = self.mask(x.values)
        return QTensor(self.apply(x.values, self._mask), x.exp)

    def backward(self, e: QTensor, policy: RoundingPolicy, propagate: bool = True):
        return QTensor(self.apply(e.values, self._mask), e.exp)


class MaxPool2d:
    """NHWC max-pooling; the first largest value of a window wins, and gets the whole error.

    Overlapping windows (stride < kernel) add the errors routed to one position in int32 and
    saturate the sum to int8 (SPEC leaves this case open; non-overlapping pools never add).
    """

    def __init__(self, kernel: int, stride: int | None = None):
        self.kernel = kernel
        self.stride = stride or kernel
        if self.kernel < 1 or self.stride < 1:
            raise ValueError(f"MaxPool2d needs kernel, stride >= 1; got {kernel}, {stride}")

    def output_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        if len(shape) != 4:
            raise ValueError(f"MaxPool2d expects (N, H, W, C) inputs; got {shape}")
        n, h, w, c = shape
        oh = (h - self.kernel) // self.stride + 1
        ow = (w - self.kernel) // self.stride + 1
        if oh < 1 or ow < 1:
            raise ValueError(f"MaxPool2d({self.kernel}) does not fit a {h}x{w} input")
        return (n, oh, ow, c)

    def _windows(self, shape):
        _, oh, ow, _ = self.output_shape(shape)
        s = self.stride
        for offset in range(self.kernel * self.kernel):
            i, j = divmod(offset, self.kernel)
            yield offset, (slice(None), slice(i, i + s * oh, s), slice(j, j + s * ow, s))

    def pool(self, x):
        """(largest value, offset i * kernel + j of the first largest) of every window of NHWC x."""
        xp = namespace(x)
        best = winner = None
        for offset, window in self._windows(x.shape):
            candidate = x[window]
            if best is None:
                best = candidate
                winner = xp.zeros(candidate.shape, dtype=xp.int16, device=candidate.device)
            else:  # products with bools: much faster than `where` in numpy and torch alike
                better = candidate > best
                best = xp.maximum(best, candidate)
                winner += better * (offset - winner)
        return best, winner

    def route(self, e, winner, input_shape):
        """The int8 input error: each window's error to its winner (`pool`'s offsets)."""
        xp = namespace(e)
        if self.stride == self.kernel:  # each input in at most one window: no sums to saturate
            error = saturate_int8(e)  # sat(e) * mask == sat(e * mask)
            routed = xp.zeros(input_shape, dtype=xp.int8, device=e.device)
            for offset, window in self._windows(input_shape):
                routed[window] = error * (winner == offset)
            return routed
        routed = xp.zeros(input_shape, dtype=xp.int32, device=e.device)
        for offset, window in self._windows(input_shape):
            routed[window] += e * (winner == offset)
        return saturate_int8(routed)

    def forward(self, x: QTensor, policy: RoundingPolicy) -> QTensor:
        _check_input(x, 4, "MaxPool2d")
        best, self._winner = self.pool(x.values)
        self._input_shape = x.values.shape
        return QTensor(best, x.exp)

    def backward(self, e: QTensor, policy: RoundingPolicy, propagate: bool = True):
        return QTensor(self.route(e.values, self._winner, self._input_shape), e.exp)


class Flatten:
    """(N, ...) -> (N, features); changes nothing but the shape."""

    def output_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        return (shape[0], math.prod(shape[1:]))

    def forward(self, x: QTensor, policy: RoundingPolicy) -> QTensor:
        self._shape = x.values.shape
        return QTensor(x.values.reshape(x.values.shape[0], -1), x.exp)

    def backward(self, e: QTensor, policy: RoundingPolicy, propagate: bool = True):
        return QTensor(e.values.reshape(self._shape), e.exp)
