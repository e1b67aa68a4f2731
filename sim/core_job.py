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

from niti_hw.golden.tensor import TENSOR_KINDS
from niti_hw.params import ROUND_MODES
from niti_hw.program.isa import Bank
from niti_hw.program.machine import Machine


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


def run_steps(machine: Machine, items, loads, m_u: int) -> list[Step]:
    """Run `items` once per entry of `loads` (each a function that loads the machine's banks for
    that step, e.g. the next batch), recording each step."""
    modes = tuple(ROUND_MODES.index(getattr(machine.policy, kind)) for kind in TENSOR_KINDS)
    steps = []
    for load in loads:
        load(machine)
        before, exponents_before = snapshot(machine)
        machine.m_u = m_u
        machine.run(items)
        after, exponents_after = snapshot(machine)
        steps.append(Step(m_u, modes, before, exponents_before, after, exponents_after,
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
