"""No float value enters the training path: forward, loss, backward and update see integers only."""

import numpy as np
import pytest

import niti_hw.golden.layers as layers
import niti_hw.golden.loss as loss
import niti_hw.golden.network as network
import niti_hw.golden.tensor as tensor
from niti_hw.golden import (
    Conv2d, Flatten, IntegerWeights, Linear, MaxPool2d, QTensor, ReLU, RoundingPolicy, Sequential,
)

SPIED = [
    (tensor, "int8_matmul"), (tensor, "shift_round"), (tensor, "bitwidth"),
    (loss, "shift_round"), (network, "ce_gradient"), (layers, "weight_gradient"),
]


def arrays_in(value):
    if isinstance(value, np.ndarray):
        yield value
    elif isinstance(value, QTensor):
        yield value.values
    elif isinstance(value, (tuple, list)):
        for item in value:
            yield from arrays_in(item)


@pytest.mark.parametrize("mode", ["pseudo", "stochastic"])
def test_every_array_crossing_an_arithmetic_step_is_integer(monkeypatch, mode):
    seen = []

    def spy(name, function):
        def wrapper(*args, **kwargs):
            result = function(*args, **kwargs)
            for array in arrays_in((args, tuple(kwargs.values()), result)):
                seen.append((name, array.dtype))
            return result
        return wrapper

    for module, name in SPIED:
        monkeypatch.setattr(module, name, spy(name, getattr(module, name)))

    rng = np.random.default_rng(0)
    net = Sequential([
        Conv2d(IntegerWeights.xavier((3, 3, 1, 4), 9, 36, rng)), ReLU(), MaxPool2d(2), Flatten(),
        Linear(IntegerWeights.xavier((64, 10), 64, 10, rng)),
    ])
    x = QTensor(rng.integers(-127, 128, (8, 10, 10, 1), dtype=np.int8), -7)
    net.train_step(x, rng.integers(0, 10, 8), 2, RoundingPolicy(mode, mode, mode, mode))

    names = {name for name, _ in seen}
    assert names == {name for _, name in SPIED}  # every step was watched
    floats = [(name, dtype) for name, dtype in seen if not np.issubdtype(dtype, np.integer)]
    assert floats == []
    for layer in net.weighted_layers:
        assert layer.weights.values.dtype == np.int32


def test_float_tensors_are_refused_at_the_door():
    with pytest.raises(TypeError, match="QTensor.values must be an integer array.*float64"):
        QTensor(np.zeros((1, 4)), -7)
    with pytest.raises(TypeError, match="QTensor.exp must be a Python int"):
        QTensor(np.zeros((1, 4), np.int8), -7.0)
