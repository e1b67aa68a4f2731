"""The `program` backend: every training step runs as a compiled sequencer program on the
reference machine (`niti_hw.program`), as the core is to run it: the step compiled once per batch
size, the weights, batch and labels loaded into the banks, the program run, the weights read
back (the weights are loaded once and stay in the banks, as on the core, until a step of
another batch size runs another program). Golden's arithmetic throughout, so the weights stay bit for bit those of `golden`; what
this backend proves is the program: its instruction order, addressing and allocation.
"""

from __future__ import annotations

import numpy as np

from ..golden import QTensor
from ..models import get_model
from ..params import HardwareParams
from ..program import host
from ..program.compiler import compile_step, program_params
from ..program.machine import Machine
from .build import BuiltNetwork
from .config import TrainConfig
from .integer_run import IntegerRun
from .prepared import PreparedData


class ProgramBackend(IntegerRun):
    """IntegerRun whose training steps run compiled programs; evaluation stays golden's forward."""

    label = "niti-program"

    def __init__(self, built: BuiltNetwork, data: PreparedData, config: TrainConfig):
        super().__init__(built, data, config)
        self.built = built
        self.machines: dict[int, tuple] = {}  # batch size -> (program, machine)
        self.holder = None  # the machine whose banks hold the current weights

    def load_state_arrays(self, arrays) -> None:
        super().load_state_arrays(arrays)
        self.holder = None  # resumed weights: loaded into the banks at the next step

    def _machine(self, batch: int):
        if batch not in self.machines:
            h, w, c = self.built.input_shape
            program = compile_step(get_model(self.config.model), (c, h, w), batch,
                                   HardwareParams(), self.built.classes, fit=True,
                                   weight_bits=self.config.acc_bits)
            machine = Machine(program_params(program, HardwareParams()), self.policy, 0,
                              program.weight_bits)
            self.machines[batch] = program, machine
        return self.machines[batch]

    def step(self, x: QTensor, labels: np.ndarray, m_u: int) -> QTensor:
        program, machine = self._machine(len(labels))
        machine.policy, machine.m_u = self.policy, m_u
        if self.holder is not machine:  # the weights stay on chip from step to step
            host.load_weights(machine, program, self.net)
            self.holder = machine
        host.load_batch(machine, program, x, labels)
        machine.run(program.instructions)
        for layer, values in zip(self.net.weighted_layers, host.weights(machine, program).values()):
            layer.weights.values = values.reshape(layer.weights.values.shape)
        return host.logits(machine, program)
