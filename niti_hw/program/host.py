"""The host's side of a step: load a golden network's weights, a batch and its labels into a
machine's banks as the compiled program placed them, and read the results back."""

from __future__ import annotations

import numpy as np

from niti_hw.golden import QTensor, Sequential
from niti_hw.perf.lowering import INPUT
from niti_hw.program.compiler import LABELS, Program


def load(machine, program: Program, net: Sequential, x: QTensor, labels) -> None:
    """The network's weights and a batch (`load_weights`, `load_batch`), all checked first."""
    _write(machine, program, _weight_loads(program, net) + _batch_loads(program, x, labels))


def load_weights(machine, program: Program, net: Sequential) -> None:
    """Weights (and their int8 copies when wider) with their exponents: once, before the first
    step; the core keeps them from step to step."""
    _write(machine, program, _weight_loads(program, net))


def load_batch(machine, program: Program, x: QTensor, labels) -> None:
    """A step's batch (NHWC int8) with its exponent, and its labels."""
    _write(machine, program, _batch_loads(program, x, labels))


def _weight_loads(program: Program, net: Sequential) -> list:
    layers = net.weighted_layers
    if len(layers) != len(program.weighted):
        raise ValueError(f"the program trains {len(program.weighted)} weighted layers "
                         f"({', '.join(program.weighted)}); the network has {len(layers)}")
    loads = []
    for name, layer in zip(program.weighted, layers):
        if layer.weights.acc_bits != program.weight_bits:
            raise ValueError(f"{name}: the program stores {program.weight_bits}-bit weights; the "
                             f"network's are {layer.weights.acc_bits} bits")
        loads.append((f"{name}.weight", layer.weights.values, layer.weights.exp))
        if program.weight_bits > 8:  # the GEMMs' int8 copy, as the forward pass narrows it
            copy = layer.weights.as_int8()
            loads.append((f"{name}.weight8", copy.values, copy.exp))
    return loads


def _batch_loads(program: Program, x: QTensor, labels) -> list:
    labels = np.asarray(labels)
    if labels.shape != (program.batch,):
        raise ValueError(f"the program takes {program.batch} labels; got shape {labels.shape}")
    return [(INPUT, x.values, x.exp), (LABELS, labels, None)]


def _write(machine, program: Program, loads: list) -> None:
    """Every load's size checked against the program before any is written."""
    for name, values, _ in loads:
        words = program.tensors[name].words
        if np.size(values) != words:
            raise ValueError(f"{name}: the program holds {words} words; got {np.size(values)}")
    for name, values, exponent in loads:
        _put(machine, program, name, values, exponent)


def weights(machine, program: Program) -> dict[str, np.ndarray]:
    """Each weighted layer's weights after the run, flat in the golden layout's order."""
    return {name: _get(machine, program, f"{name}.weight") for name in program.weighted}


def logits(machine, program: Program) -> QTensor:
    """The last layer's int8 output of the forward pass, (batch, classes), and its exponent."""
    place = program.tensors[program.logits]
    values = _get(machine, program, program.logits).reshape(program.batch, program.classes)
    return QTensor(values, int(machine.exponents[place.exponent]))


def _put(machine, program: Program, name: str, values, exponent: int | None = None) -> None:
    place = program.tensors[name]
    machine.write(place.bank, place.base, values)
    if exponent is not None:
        machine.exponents[place.exponent] = exponent


def _get(machine, program: Program, name: str) -> np.ndarray:
    place = program.tensors[name]
    return machine.read(place.bank, place.base, place.words).copy()
