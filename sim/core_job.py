"""A core run as a file: the program, and for every step the banks and exponent registers the
host loads, the settings, and what the reference machine holds after the step.

The test process builds it with `niti_hw.program.machine.Machine` (the step's expected state) and
the bench (`bench_core_step.py`) replays it on the simulated core: a job is the one thing both
sides read, so neither computes the other's expectations.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from niti_hw.golden import QTensor, RoundingPolicy
from niti_hw.golden.tensor import TENSOR_KINDS
from niti_hw.models import ModelSpec, get_model
from niti_hw.params import ROUND_MODES, HardwareParams
from niti_hw.program import host
from niti_hw.program.compiler import Program, compile_step, program_params
from niti_hw.program.isa import Bank
from niti_hw.program.machine import Machine
from niti_hw.train.build import build_network


@dataclass
class Step:
    """One run of the program: state before (as the host leaves it), settings, state after."""

    m_u: int
    modes: tuple[int, ...]
    """Each tensor kind's rounding mode, as its index in `ROUND_MODES` (the config port's code)."""
    before: dict[Bank, np.ndarray]
    exponents_before: np.ndarray
    after: dict[Bank, np.ndarray]
    exponents_after: np.ndarray
    lfsr_after: np.ndarray
    """The rounding LFSRs' states after the step (`policy.lanes.states`)."""


def snapshot(machine: Machine) -> tuple[dict[Bank, np.ndarray], np.ndarray]:
    return ({bank: values.astype(np.int64) for bank, values in machine.banks.items()},
            machine.exponents.astype(np.int64).copy())


def run_steps(machine: Machine, items, loads, m_u) -> list[Step]:
    """Run `items` once per entry of `loads` (each a function that loads the machine's banks for
    that step, e.g. the next batch), recording each step; `m_u` is one value or one per step."""
    modes = tuple(ROUND_MODES.index(getattr(machine.policy, kind)) for kind in TENSOR_KINDS)
    steps = []
    for index, load in enumerate(loads):
        load(machine)
        before, exponents_before = snapshot(machine)
        machine.m_u = m_u if isinstance(m_u, int) else m_u[index]
        machine.run(items)
        after, exponents_after = snapshot(machine)
        steps.append(Step(machine.m_u, modes, before, exponents_before, after, exponents_after,
                          machine.policy.lanes.states.astype(np.uint32).copy()))
    return steps


def save(path: Path, words: list[int], steps: list[Step]) -> None:
    arrays = {"words": np.array(words, np.uint32), "steps": np.array(len(steps))}
    for s, step in enumerate(steps):
        arrays[f"s{s}_m_u"] = np.array(step.m_u)
        arrays[f"s{s}_modes"] = np.array(step.modes)
        arrays[f"s{s}_exponents_before"] = step.exponents_before
        arrays[f"s{s}_exponents_after"] = step.exponents_after
        arrays[f"s{s}_lfsr_after"] = step.lfsr_after
        for bank in Bank:
            arrays[f"s{s}_before_{bank.name}"] = step.before[bank]
            arrays[f"s{s}_after_{bank.name}"] = step.after[bank]
    np.savez_compressed(path, **arrays)


def load(path: Path) -> tuple[list[int], list[Step]]:
    with np.load(path) as job:
        steps = [Step(int(job[f"s{s}_m_u"]), tuple(int(v) for v in job[f"s{s}_modes"]),
                      {bank: job[f"s{s}_before_{bank.name}"] for bank in Bank},
                      job[f"s{s}_exponents_before"],
                      {bank: job[f"s{s}_after_{bank.name}"] for bank in Bank},
                      job[f"s{s}_exponents_after"], job[f"s{s}_lfsr_after"])
                 for s in range(int(job["steps"]))]
        return [int(word) for word in job["words"]], steps


def training_steps(model: str | ModelSpec, input_chw, batch: int, base: HardwareParams, mode: str,
                   seed: int, m_u: list[int]) -> tuple[Program, HardwareParams, list[Step]]:
    """`len(m_u)` training steps of `model` (golden initial weights of `seed`, random int8
    batches) compiled for `base` with memories sized for the program: the program, the core's
    parameters and each step as the reference machine runs it. Golden's `Sequential.train_step`
    runs beside it and every step's weights, logits and LFSR states must be equal, so a core
    that matches these steps matches golden training."""
    c, h, w = input_chw
    spec = get_model(model) if isinstance(model, str) else model
    built = build_network(spec, (h, w, c), spec.layers[-1].out_features, seed=seed)
    program = compile_step(spec, input_chw, batch, base, fit=True)
    params = program_params(program, base)
    policies = [RoundingPolicy(*[mode] * len(TENSOR_KINDS), seed=params.lfsr_seed,
                               n_lanes=params.lfsr_lanes) for _ in range(2)]
    machine, net = Machine(params, policies[0], m_u[0]), built.net
    rng = np.random.default_rng(seed)
    host.load_weights(machine, program, net)
    steps = []
    for value in m_u:
        x = QTensor(rng.integers(-127, 128, (batch, h, w, c)).astype(np.int8), -7)
        labels = rng.integers(0, program.classes, batch)
        logits = net.train_step(x, labels, value, policies[1])
        steps += run_steps(machine, program.instructions,
                           [lambda machine: host.load_batch(machine, program, x, labels)], value)
        _check_golden(machine, program, net, logits, policies)
    return program, params, steps


def _check_golden(machine: Machine, program: Program, net, logits: QTensor, policies) -> None:
    """The machine's step is golden's: logits, every layer's weights, the LFSR states."""
    got = host.logits(machine, program)
    if not (np.array_equal(got.values, logits.values) and got.exp == logits.exp):
        raise AssertionError("the machine's logits differ from golden train_step's")
    for name, layer in zip(program.weighted, net.weighted_layers):
        if not np.array_equal(host.weights(machine, program)[name], layer.weights.values.ravel()):
            raise AssertionError(f"the machine's {name} weights differ from golden's")
    if not np.array_equal(policies[0].lanes.states, policies[1].lanes.states):
        raise AssertionError("the machine's LFSR states differ from golden's")
