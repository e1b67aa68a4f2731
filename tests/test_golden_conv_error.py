"""The stride-1 conv error as one GEMM over the padded error equals GEMM + col2im, bit for bit.

`Conv2d._padded_error_product` computes a stride-1 input error as im2col of the error (padded by
K-1-padding, or cropped where the padding is larger) against the weights turned 180 degrees with
Cin and Cout swapped; `_transposed` takes it where it computes no more products than E @ W^T
(H*W <= OH*OW) and keeps E @ W^T folded by col2im otherwise, at strides > 1, and for the
datapath's policy. The reference below is that GEMM + col2im, with the layer's own `_fold`.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from niti_hw.datapath import DatapathPolicy
from niti_hw.golden import INT32_SAFE_K, Conv2d, IntegerWeights, QTensor, RoundingPolicy
from niti_hw.golden.gemm import ENGINES

try:
    import torch
except ImportError:
    torch = None

if torch is not None:
    from devices import device_params

    TARGETS = ["numpy", *device_params()]
else:
    TARGETS = ["numpy"]


def folded(layer, e, w, policy):
    """The int32 error as E @ W^T into (N*OH*OW, KH*KW*Cin) columns, summed by col2im."""
    cols = policy.matmul(e.reshape(-1, layer.cout), w.reshape(-1, layer.cout).T)
    return layer._fold(cols, layer._input_shape)


def int8_values(draw, shape, rng):
    """Random int8 values, or only the extremes +-127, or all +127 (the largest sums)."""
    fill = draw(st.sampled_from(["random", "extremes", "all 127"]))
    if fill == "random":
        return rng.integers(-127, 128, shape, dtype=np.int8)
    if fill == "extremes":
        return (rng.integers(0, 2, shape, dtype=np.int8) * 2 - 1) * np.int8(127)
    return np.full(shape, 127, dtype=np.int8)


@st.composite
def stride1_convs(draw):
    kh, kw, padding = draw(st.integers(1, 5)), draw(st.integers(1, 5)), draw(st.integers(0, 5))
    h = draw(st.integers(max(1, kh - 2 * padding), 9))
    w = draw(st.integers(max(1, kw - 2 * padding), 9))
    n, cin, cout = draw(st.integers(1, 3)), draw(st.integers(1, 9)), draw(st.integers(1, 9))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    weights = int8_values(draw, (kh, kw, cin, cout), rng)
    x = rng.integers(-127, 128, (n, h, w, cin), dtype=np.int8)
    oh, ow = h + 2 * padding - kh + 1, w + 2 * padding - kw + 1
    e = int8_values(draw, (n, oh, ow, cout), rng)
    return weights, padding, x, e


def on(target, array):
    return array if target == "numpy" else torch.from_numpy(array).to(target)


def host(values):
    return values if isinstance(values, np.ndarray) else values.cpu().numpy()


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("engine", sorted(ENGINES))
@given(stride1_convs())
@settings(max_examples=150, deadline=None)
def test_stride1_error_is_gemm_plus_col2im_bit_for_bit(target, engine, case):
    """Kernels 1..5 (not square), paddings 0..5 (beyond K-1: the error is cropped), 1..9
    channels (both im2col copies), int8 extremes; the int32 error before rounding (the one-GEMM
    form whether or not the layer picks it), then the rounded error, on numpy and on torch."""
    weights, padding, x, e = case
    layer = Conv2d(IntegerWeights(on(target, weights), -7), padding=padding)
    policy = RoundingPolicy(engine=engine)
    layer.forward(QTensor(on(target, x), -7), policy)
    w, e = layer.weights.as_int8().values, on(target, e)
    expected = host(folded(layer, e, w, policy))
    got = host(layer._padded_error_product(e, w, policy))
    assert got.dtype == np.int32 and got.shape == x.shape
    assert (got == expected).all()
    values, k = policy.narrow(expected, "error")
    back = layer.backward(QTensor(e, -7), policy)
    assert (host(back.values) == values).all() and back.exp == -14 + k


def test_stride1_error_runs_no_col2im(monkeypatch):
    def refuse(*args):
        raise AssertionError("col2im called at stride 1")

    monkeypatch.setattr(Conv2d, "_fold", refuse)
    layer = Conv2d(IntegerWeights(np.ones((3, 3, 2, 4), int), -7), padding=1)
    out = layer.forward(QTensor(np.ones((1, 5, 5, 2), np.int8), -7), RoundingPolicy())
    back = layer.backward(QTensor(np.ones(out.shape, np.int8), -7), RoundingPolicy())
    # Known answer: all ones, 3x3 'same' padding: a corner sees 2x2 window offsets, 4 outputs.
    assert back.values[0, :, :, 0].tolist() == [[16, 24, 24, 24, 16], [24, 36, 36, 36, 24],
                                                [24, 36, 36, 36, 24], [24, 36, 36, 36, 24],
                                                [16, 24, 24, 24, 16]]
    assert back.exp == -14  # B(36) = 6: no shift


@pytest.mark.parametrize("stride, kernel, padding, policy, folds", [
    (1, 3, 1, RoundingPolicy(), False),    # 'same': as many products as E @ W^T
    (1, 1, 0, RoundingPolicy(), False),
    (1, 3, 2, RoundingPolicy(), False),    # wider than 'same': fewer products
    (1, 5, 1, RoundingPolicy(), True),     # the padded error would take 49/25 the products
    (2, 3, 1, RoundingPolicy(), True),     # no one-GEMM form at stride 2
    (1, 3, 1, DatapathPolicy(), True),     # the datapath's GEMMs saturate in k order per column
])
def test_which_convs_keep_col2im(monkeypatch, stride, kernel, padding, policy, folds):
    calls = []
    fold = Conv2d._fold
    monkeypatch.setattr(Conv2d, "_fold", lambda *args: calls.append(1) or fold(*args))
    rng = np.random.default_rng(5)
    weights = rng.integers(-127, 128, (kernel, kernel, 2, 4))
    layer = Conv2d(IntegerWeights(weights, -7), stride, padding)
    x = rng.integers(-127, 128, (2, 7, 7, 2), dtype=np.int8)
    out = layer.forward(QTensor(x, -7), policy)
    e = rng.integers(-127, 128, out.shape, dtype=np.int8)
    back = layer.backward(QTensor(e, -7), policy)
    assert calls == [1] * folds and back.shape == x.shape


def test_error_reduction_beyond_int32_is_refused():
    """At stride 1 the one GEMM reduces over KH*KW*Cout terms: K = 25 * 5326 > INT32_SAFE_K."""
    cout = INT32_SAFE_K // 25 + 1
    layer = Conv2d(IntegerWeights(np.zeros((5, 5, 1, cout), int), -7))
    layer.forward(QTensor(np.zeros((1, 5, 5, 1), np.int8), -7), RoundingPolicy())
    with pytest.raises(ValueError, match=rf"Conv2d transposed convolution reduces over "
                                         rf"K = {25 * cout} terms; K must be below {INT32_SAFE_K}"):
        layer.backward(QTensor(np.zeros((1, 1, 1, cout), np.int8), -7), RoundingPolicy())
