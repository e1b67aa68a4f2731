"""Layers of the golden model: known answers, and Linear/Conv2d against float references."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from niti_hw.golden import (
    Conv2d, Flatten, IntegerWeights, Linear, MaxPool2d, QTensor, ReLU, RoundingPolicy, Sequential,
    bitwidth, quantise_float, quantise_pixels, shift_round, weight_gradient,
)

NEAREST = dict(activation="nearest", error="nearest", gradient="nearest", loss="nearest")


def narrowed(acc):
    """What SPEC's narrowing makes of an int32 result, in nearest mode."""
    acc = np.asarray(acc).astype(np.int64)
    k = max(0, bitwidth(acc) - 7)
    return shift_round(acc, k, "nearest"), k


def test_linear_forward_known_answer_and_exponents():
    layer = Linear(IntegerWeights(np.array([[3], [4]]), exp=-5))
    out = layer.forward(QTensor(np.array([[1, 2]], dtype=np.int8), -7), RoundingPolicy(**NEAREST))
    assert out.values.tolist() == [[11]] and out.exp == -12  # B(11) = 4: no shift
    big = layer.forward(QTensor(np.array([[100, 100]], np.int8), -7), RoundingPolicy(**NEAREST))
    assert big.values.tolist() == [[88]] and big.exp == -12 + 3  # 700 -> B 10 -> k 3 -> 88


@given(st.integers(1, 9), st.integers(1, 30), st.integers(1, 12), st.integers(0, 2**31))
@settings(max_examples=30, deadline=None)
def test_linear_against_float_reference(n, fan_in, fan_out, seed):
    rng = np.random.default_rng(seed)
    a = rng.integers(-127, 128, (n, fan_in), dtype=np.int8)
    w = rng.integers(-127, 128, (fan_in, fan_out))
    e = rng.integers(-127, 128, (n, fan_out), dtype=np.int8)
    layer, policy = Linear(IntegerWeights(w, -6)), RoundingPolicy(**NEAREST)
    out = layer.forward(QTensor(a, -7), policy)
    reference = a.astype(np.float64) @ w.astype(np.float64)
    values, k = narrowed(reference)
    assert (out.values == values).all() and out.exp == -13 + k
    back = layer.backward(QTensor(e, -7), policy)
    values, k = narrowed(e.astype(np.float64) @ w.T.astype(np.float64))
    assert (back.values == values).all() and back.exp == -13 + k
    assert (layer.g32 == a.T.astype(np.float64) @ e.astype(np.float64)).all()


torch = pytest.importorskip("torch", reason="torch (extra 'torch') is the float reference here")
F = torch.nn.functional


@pytest.mark.parametrize(
    "n, h, w, cin, cout, kernel, stride, padding",
    [(2, 6, 6, 1, 2, 3, 1, 0), (2, 7, 5, 3, 4, 3, 2, 1), (1, 9, 9, 2, 3, 5, 1, 2),
     (3, 8, 8, 4, 2, 2, 2, 0), (1, 10, 7, 2, 2, 3, 3, 1), (2, 5, 5, 3, 5, 1, 1, 0),
     (2, 7, 5, 6, 3, 3, 2, 1), (1, 10, 7, 5, 2, 3, 3, 1), (2, 6, 6, 8, 3, 3, 1, 1)],  # strided view
)
def test_conv2d_against_torch_float64(n, h, w, cin, cout, kernel, stride, padding):
    rng = np.random.default_rng(n * h * w + cin)
    x = rng.integers(-127, 128, (n, h, w, cin), dtype=np.int8)
    weights = rng.integers(-127, 128, (kernel, kernel, cin, cout))
    layer = Conv2d(IntegerWeights(weights, -7), stride=stride, padding=padding)
    policy = RoundingPolicy(**NEAREST)
    out = layer.forward(QTensor(x, -7), policy)

    x_t = torch.from_numpy(x.astype(np.float64)).permute(0, 3, 1, 2)
    w_t = torch.from_numpy(weights.astype(np.float64)).permute(3, 2, 0, 1)  # OIHW
    acc = F.conv2d(x_t, w_t, stride=stride, padding=padding).permute(0, 2, 3, 1).numpy()
    values, k = narrowed(acc)
    assert (out.values == values).all() and out.exp == -14 + k

    e = rng.integers(-127, 128, out.values.shape, dtype=np.int8)
    e_t = torch.from_numpy(e.astype(np.float64)).permute(0, 3, 1, 2)
    back = layer.backward(QTensor(e, -7), policy)
    e_acc = torch.nn.grad.conv2d_input(x_t.shape, w_t, e_t, stride=stride, padding=padding)
    values, k = narrowed(e_acc.permute(0, 2, 3, 1).numpy())
    assert back.values.shape == x.shape
    assert (back.values == values).all() and back.exp == -14 + k
    g_ref = torch.nn.grad.conv2d_weight(x_t, w_t.shape, e_t, stride=stride, padding=padding)
    g32 = layer.g32.reshape(kernel, kernel, cin, cout)
    assert (g32 == g_ref.permute(2, 3, 1, 0).numpy()).all()


def test_conv2d_first_layer_does_not_propagate():
    layer = Conv2d(IntegerWeights(np.ones((3, 3, 1, 2), int), -7))
    policy = RoundingPolicy()
    out = layer.forward(QTensor(np.ones((1, 5, 5, 1), np.int8), -7), policy)
    assert layer.backward(QTensor(np.ones(out.shape, np.int8), -7), policy, propagate=False) is None
    assert layer.g32 is not None


def test_relu_known_answer():
    relu = ReLU()
    out = relu.forward(QTensor(np.array([[-3, 0, 5]], np.int8), -4), RoundingPolicy())
    assert out.values.tolist() == [[0, 0, 5]] and out.exp == -4
    back = relu.backward(QTensor(np.array([[7, 8, 9]], np.int8), -7), RoundingPolicy())
    assert back.values.tolist() == [[0, 0, 9]] and back.exp == -7


def test_maxpool_first_max_wins_and_gets_the_error():
    x = np.array([[1, 5, 2, 2], [5, 0, 2, 2], [-1, -2, 9, 3], [-3, -1, 3, 9]], np.int8)
    pool = MaxPool2d(2)
    out = pool.forward(QTensor(x.reshape(1, 4, 4, 1), -3), RoundingPolicy())
    assert out.values[0, :, :, 0].tolist() == [[5, 2], [-1, 9]] and out.exp == -3
    back = pool.backward(QTensor(np.array([[10, 20], [30, 40]], np.int8).reshape(1, 2, 2, 1), -7),
                         RoundingPolicy())
    assert back.values[0, :, :, 0].tolist() == [
        [0, 10, 20, 0], [0, 0, 0, 0], [30, 0, 40, 0], [0, 0, 0, 0]]


def test_overlapping_maxpool_sums_routed_errors_with_saturation():
    x = np.zeros((1, 3, 3, 1), np.int8)
    x[0, 1, 1, 0] = 5  # the centre wins all four 2x2 windows of stride 1
    pool = MaxPool2d(2, stride=1)
    pool.forward(QTensor(x, 0), RoundingPolicy())
    back = pool.backward(QTensor(np.full((1, 2, 2, 1), 50, np.int8), -7), RoundingPolicy())
    assert back.values[0, 1, 1, 0] == 127 and back.values.sum() == 127


def reference_pool_backward(x, e, kernel, stride):
    """One window at a time: the first largest value gets the error; sums saturate."""
    n, h, w, c = x.shape
    _, oh, ow, _ = e.shape
    routed = np.zeros(x.shape, np.int64)
    for b, i, j, ch in np.ndindex(n, oh, ow, c):
        window = x[b, i * stride : i * stride + kernel, j * stride : j * stride + kernel, ch]
        di, dj = np.unravel_index(np.argmax(window), window.shape)  # first maximum, row-major
        routed[b, i * stride + di, j * stride + dj, ch] += e[b, i, j, ch]
    return np.clip(routed, -127, 127).astype(np.int8)


@pytest.mark.parametrize("kernel, stride", [(2, 2), (3, 3), (2, 1), (3, 2)])
@given(seed=st.integers(0, 2**32 - 1), h=st.integers(3, 9), w=st.integers(3, 9))
@settings(max_examples=25)
def test_maxpool_backward_against_one_window_at_a_time(kernel, stride, seed, h, w):
    """Ties (few distinct values), sizes that leave rows and columns out, -128 in the error."""
    rng = np.random.default_rng(seed)
    x = rng.integers(-2, 3, (2, h, w, 3)).astype(np.int8)
    pool = MaxPool2d(kernel, stride)
    out = pool.forward(QTensor(x, 0), RoundingPolicy())
    e = rng.integers(-128, 128, out.shape).astype(np.int8)
    back = pool.backward(QTensor(e, -7), RoundingPolicy())
    assert back.values.dtype == np.int8
    assert (back.values == reference_pool_backward(x, e, kernel, stride)).all()


def test_flatten_round_trip():
    flat = Flatten()
    x = np.arange(24, dtype=np.int8).reshape(2, 3, 2, 2)
    out = flat.forward(QTensor(x, 1), RoundingPolicy())
    assert out.shape == (2, 12) and out.exp == 1
    assert (flat.backward(out, RoundingPolicy()).values == x).all()


def test_weight_gradient_rules():
    policy = RoundingPolicy(**NEAREST)
    assert weight_gradient(np.zeros((2, 2), np.int32), 3, policy) is None
    small = np.array([[3, -5], [7, 0]], np.int32)  # B = 3 <= m_u = 3: kept as it is
    assert weight_gradient(small, 3, policy).tolist() == small.tolist()
    wide = np.array([[1000, -24], [0, 3]], np.int32)  # B = 10, m_u = 2: shift 8
    assert weight_gradient(wide, 2, policy).tolist() == [[4, 0], [0, 0]]
    with pytest.raises(ValueError, match=r"m_u .* in 1\.\.8; got 0"):
        weight_gradient(wide, 0, policy)


def test_wide_weights_round_and_saturate():
    weights = IntegerWeights(np.array([[32767, -300], [128, 127]]), exp=-15, acc_bits=16)
    view = weights.as_int8()
    assert view.values.tolist() == [[127, -1], [1, 0]] and view.exp == -7
    weights.apply(np.array([[-5, 127], [-127, 0]], np.int8))
    assert weights.values.tolist() == [[32767, -427], [255, 127]]
    with pytest.raises(ValueError, match=r"acc_bits must be in 8\.\.24"):
        IntegerWeights(np.zeros(2, int), 0, acc_bits=6)
    with pytest.raises(ValueError, match=r"\[-127, 127\]"):
        IntegerWeights(np.array([200]), 0, acc_bits=8)


def test_plain_weights_saturate_at_127():
    weights = IntegerWeights(np.array([120, -120]), exp=-7)
    weights.apply(np.array([-20, 20], np.int8))
    assert weights.values.tolist() == [127, -127]


def test_quantise_float_and_pixels():
    q = quantise_float(np.array([0.3, -0.1, 0.0]))
    assert q.exp == -8 and q.values.tolist() == [77, -26, 0]  # ceil(log2 .3) = -1
    wide = quantise_float(np.array([0.3, -0.1]), bits=16)
    assert wide.exp == -16 and wide.values.tolist() == [19661, -6554]
    px = quantise_pixels(np.array([0, 33, 255], np.uint8), mean=33)
    assert px.exp == -7 and px.values.tolist() == [-17, 0, 111]


def test_layer_shape_errors_name_the_layer():
    net = Sequential([Flatten(), Linear(IntegerWeights(np.ones((10, 2), int), -7))])
    with pytest.raises(ValueError, match=r"layer 1 \(Linear\): .*10 features in the last axis; got shape \(1, 12\)"):
        net.forward(QTensor(np.ones((1, 3, 4), np.int8), -7), RoundingPolicy())
    with pytest.raises(ValueError, match="does not fit a 2x2 input"):
        Conv2d(IntegerWeights(np.ones((3, 3, 1, 1), int), 0)).forward(
            QTensor(np.ones((1, 2, 2, 1), np.int8), 0), RoundingPolicy())


def tiny_net(seed: int, acc_bits: int = 8) -> Sequential:
    rng = np.random.default_rng(seed)
    return Sequential([
        Conv2d(IntegerWeights.xavier((3, 3, 1, 4), 9, 36, rng, acc_bits), padding=1), ReLU(),
        MaxPool2d(2), Flatten(),
        Linear(IntegerWeights.xavier((64, 10), 64, 10, rng, acc_bits)),
    ])


@pytest.mark.parametrize("mode", ["pseudo", "nearest", "stochastic"])
@pytest.mark.parametrize("acc_bits, m_u", [(8, 3), (12, 4), (16, 8)])  # paper, Table 3
def test_training_steps_are_deterministic_and_learn(mode, acc_bits, m_u):
    rng = np.random.default_rng(0)
    x = QTensor(rng.integers(-127, 128, (32, 8, 8, 1), dtype=np.int8), -7)
    y = rng.integers(0, 10, 32)
    finals = []
    for _ in range(2):
        net = tiny_net(1, acc_bits)
        policy = RoundingPolicy(mode, mode, mode, mode, seed=5)
        start = [layer.weights.values.copy() for layer in net.weighted_layers]
        for _ in range(30):
            net.train_step(x, y, m_u=m_u, policy=policy)
        finals.append([layer.weights.values.copy() for layer in net.weighted_layers])
        assert any((a != b).any() for a, b in zip(start, finals[-1]))
    assert all((a == b).all() for a, b in zip(*finals))
    if acc_bits == 8:  # wide weights take smaller steps: far more than 30 are needed
        accuracy = (net.predict(x, policy) == y).mean()
        assert accuracy > 0.5  # memorises 32 random samples from ~0.1 at start
