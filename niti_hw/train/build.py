"""Turn a ModelSpec into a golden NITI network, with the float initial weights kept for the twin."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..golden import Conv2d, Flatten, IntegerWeights, Linear, MaxPool2d, ReLU, Sequential
from ..golden.init import xavier_uniform
from ..models import Conv, Fc, Flat, ModelSpec, Pool, Relu


@dataclass
class BuiltNetwork:
    """The integer network and, per weighted layer, the float weights it was quantised from."""

    net: Sequential
    initial_weights: list[np.ndarray]
    input_shape: tuple[int, int, int]
    classes: int


def describe(spec_layer) -> str:
    return repr(spec_layer).replace("()", "")


def build_network(spec: ModelSpec, input_shape, classes: int, seed: int, acc_bits: int = 8):
    """Build layer by layer, checking shapes as it goes: a misfit names the failing layer."""
    rng = np.random.default_rng(seed)
    shape = (1, *input_shape)
    layers, initial = [], []
    last_fc = max(i for i, layer in enumerate(spec.layers) if isinstance(layer, Fc))
    for index, item in enumerate(spec.layers):
        try:
            layer, floats = _make_layer(item, shape, classes if index == last_fc else None, rng,
                                        acc_bits)
            shape = layer.output_shape(shape)
        except ValueError as error:
            raise ValueError(
                f"{spec.name} does not fit a {input_shape[0]}x{input_shape[1]}x{input_shape[2]} "
                f"input: layer {index} {describe(item)} fails on shape {shape[1:]}: {error}"
            ) from None
        layers.append(layer)
        if floats is not None:
            initial.append(floats)
    return BuiltNetwork(Sequential(layers), initial, tuple(input_shape), classes)


def _make_layer(item, shape, classes, rng, acc_bits):
    if isinstance(item, Conv):
        if len(shape) != 4:
            raise ValueError("a convolution needs an (H, W, C) input")
        cin = shape[3]
        fan_in, fan_out = item.kernel**2 * cin, item.kernel**2 * item.out_channels
        floats = xavier_uniform((item.kernel, item.kernel, cin, item.out_channels), fan_in,
                                fan_out, rng)
        weights = IntegerWeights.from_float(floats, acc_bits)
        return Conv2d(weights, item.stride, item.padding), floats
    if isinstance(item, Fc):
        if len(shape) != 2:
            raise ValueError("a linear layer needs a flat input (add Flat before it)")
        out = classes or item.out_features
        floats = xavier_uniform((shape[1], out), shape[1], out, rng)
        return Linear(IntegerWeights.from_float(floats, acc_bits)), floats
    if isinstance(item, Pool):
        return MaxPool2d(item.kernel, item.stride), None
    if isinstance(item, Relu):
        return ReLU(), None
    if isinstance(item, Flat):
        return Flatten(), None
    raise TypeError(f"unknown layer description {item!r}")
