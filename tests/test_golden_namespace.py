"""The golden functions on torch tensors give exactly what they give on numpy arrays.

The torch backend runs the golden code itself on tensors, so these tests pin the one thing that
could differ: how each library executes the same operations. They run on every device in
`devices.py` (the CPU here; CUDA too on a GPU machine).
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devices import device_params
from niti_hw.golden import (
    Conv2d, Flatten, IntegerWeights, Linear, LfsrLanes, MaxPool2d, QTensor, ReLU, RoundingPolicy,
    Sequential, bitwidth, ce_gradient, compiled, shift_round,
)
from niti_hw.golden.gemm import (
    ENGINES, FLOAT32_EXACT_K, int8_matmul, int_mm_layout, tensor_matmul,
)

torch = pytest.importorskip("torch")
DEVICES = device_params()


def on(device, array):
    return torch.from_numpy(np.ascontiguousarray(array)).to(device)


def same(tensor, array):
    """Equal values and the same integer width (numpy and torch dtype names agree)."""
    host = tensor.cpu().numpy()
    return host.dtype == array.dtype and host.shape == array.shape and (host == array).all()


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("mode", ["nearest", "pseudo", "stochastic"])
@pytest.mark.parametrize("kernels", ["compiled", "eager"])
@given(st.integers(0, 2**32 - 1), st.integers(0, 32), st.sampled_from([np.int8, np.int32, np.int64]))
@settings(max_examples=25)
def test_shift_round_and_bitwidth_match_numpy(device, mode, kernels, seed, k, dtype):
    """Tensors (compiled on the CPU, or eager) against numpy's eager array code."""
    rng = np.random.default_rng(seed)
    info = np.iinfo(dtype)
    x = rng.integers(max(info.min, -(2**40)), min(info.max, 2**40), (7, 13), dtype=dtype)
    lanes = LfsrLanes(seed % 1000, 5)
    twin = lanes.copy()
    try:
        compiled.ENABLED = False
        expected = shift_round(x.T, k, mode, lanes).T
        compiled.ENABLED = kernels == "compiled"
        got = shift_round(on(device, x).T, k, mode, twin).T  # a transposed view, row-major
    finally:
        compiled.ENABLED = True
    assert same(got, expected)
    assert (twin.states == lanes.states).all()  # the lanes stepped alike
    assert bitwidth(on(device, x)) == bitwidth(x)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("s", [-40, -8, -7, -3, 0, 14, 15, 40])
def test_ce_gradient_matches_numpy_on_every_path(device, s):
    """s <= -7 takes the Taylor path, s >= 15 the left-shift branch, the rest the base-2 one."""
    rng = np.random.default_rng(s + 100)
    a = rng.integers(-127, 128, (9, 10), dtype=np.int8)
    y = rng.integers(0, 10, 9)
    expected, exp = ce_gradient(a, s, y, "pseudo")
    got, got_exp = ce_gradient(on(device, a), s, on(device, y), "pseudo")
    assert same(got, expected) and got_exp == exp


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("engine", ["blas", "torch", "int_mm", "float32"])
@pytest.mark.parametrize("m, k, n", [(1, 1, 1), (5, 7, 3), (17, 8, 8), (40, FLOAT32_EXACT_K, 9),
                                     (3, FLOAT32_EXACT_K + 1, 2), (2, 2500, 20)])
def test_tensor_gemm_engines_and_kernels_are_exact_at_the_extremes(device, engine, m, k, n):
    """All-127 rows reach K * 127**2, beyond float32's exact range when K > 1024 (chunked)."""
    rng = np.random.default_rng(m * k + n)
    a = rng.integers(-127, 128, (m, k), dtype=np.int8)
    b = rng.integers(-127, 128, (k, n), dtype=np.int8)
    a[0], b[:, 0] = 127, 127
    expected = a.astype(np.int64) @ b.astype(np.int64)
    if engine in ENGINES:  # through the golden entry point
        product = lambda x, y: int8_matmul(x, y, engine)  # noqa: E731
    else:  # one tensor kernel, whatever `auto` would pick on this machine
        product = lambda x, y: tensor_matmul(x, y, engine)  # noqa: E731
    assert same(product(on(device, a), on(device, b)).to(torch.int64), expected)
    assert same(product(on(device, a), on(device, b.T).T).to(torch.int64), expected)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("kernel", ["auto", "int_mm", "float32"])
@pytest.mark.parametrize("m, k, n", [(1, 26, 3), (1, 3, 2), (1, 1, 2), (4, 26, 1)])
def test_tensor_gemm_reads_transposed_views_of_one_row_or_column(device, kernel, m, k, n):
    """A (1, K) view of a column has row stride 1, which torch calls contiguous; the CPU
    `_int_mm` took that stride for the row length and read the wrong elements."""
    rng = np.random.default_rng(m * k + n)
    a = rng.integers(-127, 128, (m, k), dtype=np.int8)
    b = rng.integers(-127, 128, (k, n), dtype=np.int8)
    def transposed(x):  # a fresh tensor has canonical strides: (1, 1) for a (K, 1) column
        return torch.empty(x.shape[::-1], dtype=torch.int8, device=device).copy_(on(device, x.T)).T

    assert m > 1 or transposed(a).stride() == (1, 1)  # the view that was misread
    got = tensor_matmul(transposed(a), transposed(b), kernel)
    assert same(got.to(torch.int64), a.astype(np.int64) @ b.astype(np.int64))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("kernel", ["auto", "int_mm", "float32"])
def test_tensor_gemm_reads_overlapping_rows(device, kernel):
    """An im2col view whose windows overlap (a kernel as wide as the input) reshapes to rows
    that share memory, row stride 4 below K = 8; the CPU `_int_mm` misread it."""
    rng = np.random.default_rng(3)
    base = rng.integers(-127, 128, 12, dtype=np.int8)
    a = on(device, base).as_strided((2, 8), (4, 1))
    b = rng.integers(-127, 128, (8, 3), dtype=np.int8)
    expected = np.stack([base[:8], base[4:]]).astype(np.int64) @ b.astype(np.int64)
    assert same(tensor_matmul(a, on(device, b), kernel).to(torch.int64), expected)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("m, k, n", [(1, 3, 5), (16, 8, 8), (17, 9, 10), (100, 33, 20)])
def test_cuda_layout_pads_with_zeros_and_stays_exact(device, m, k, n):
    """The CUDA layout (M > 16, K and N multiples of 8, B column-major) forced on any device."""
    rng = np.random.default_rng(k)
    a = on(device, rng.integers(-127, 128, (m, k), dtype=np.int8))
    b = on(device, rng.integers(-127, 128, (k, n), dtype=np.int8))
    pa, pb = int_mm_layout(a, b)
    assert pa.shape[0] > 16 and pa.shape[1] % 8 == 0 and pb.shape[1] % 8 == 0
    assert pb.t().is_contiguous() and pa.is_contiguous()
    expected = a.cpu().numpy().astype(np.int64) @ b.cpu().numpy().astype(np.int64)
    assert same(tensor_matmul(a, b, "int_mm", layout=True).to(torch.int64), expected)
    assert same(tensor_matmul(a, b, "float32").to(torch.int64), expected)


def small_network(rng):
    return Sequential([
        Conv2d(IntegerWeights.xavier((3, 3, 2, 4), 18, 36, rng, acc_bits=12), padding=1),
        ReLU(), MaxPool2d(3, 2), Conv2d(IntegerWeights.xavier((2, 2, 4, 3), 16, 12, rng), 2),
        ReLU(), Flatten(), Linear(IntegerWeights.xavier((3, 10), 3, 10, rng)),
    ])


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("mode", ["nearest", "pseudo", "stochastic"])
def test_training_steps_on_tensors_equal_numpy(device, mode):
    """Wide weights, overlapping pools, strides, padding: three steps, every tensor compared."""
    import copy

    rng = np.random.default_rng(7)
    net = small_network(rng)
    twin = copy.deepcopy(net)
    for layer in twin.weighted_layers:
        layer.weights.values = on(device, layer.weights.values)
    policies = [RoundingPolicy(mode, mode, mode, mode, seed=3) for _ in range(2)]
    for step in range(3):
        x = rng.integers(-127, 128, (6, 7, 7, 2), dtype=np.int8)
        y = rng.integers(0, 10, 6)
        logits = net.train_step(QTensor(x, -7), y, 3, policies[0])
        got = twin.train_step(QTensor(on(device, x), -7), on(device, y), 3, policies[1])
        assert same(got.values, logits.values) and got.exp == logits.exp
        for ours, theirs in zip(twin.weighted_layers, net.weighted_layers):
            assert same(ours.weights.values, theirs.weights.values)
    assert (policies[0].lanes.states == policies[1].lanes.states).all()
    assert same(twin.predict(QTensor(on(device, x), -7), policies[1]),
                net.predict(QTensor(x, -7), policies[0]))


@pytest.mark.parametrize("device", DEVICES)
@given(st.integers(0, 2**32 - 1), st.integers(1, 20), st.integers(0, 300), st.integers(1, 32))
@settings(max_examples=30)
def test_lfsr_draws_as_tensor_ops_on_the_device_match_the_host_lanes(device, seed, n_lanes,
                                                                     count, k):
    """draw_on (tensor ops, vectorised over lanes) is bit-identical to the host's lanes, and
    leaves the same states; a GPU tensor gets its draws there from draw itself."""
    host, twin = LfsrLanes(seed, n_lanes), LfsrLanes(seed, n_lanes)
    expected = host.draw(count, k)
    like = on(device, np.zeros(1, np.int32))
    got = twin.draw(count, k, like) if device == "cuda" else twin.draw_on(count, k, like)
    assert got.device.type == device
    assert same(got, expected)
    assert (twin.states == host.states).all()
