"""The `sim` backend: NITI training with every value produced through the datapath model.

The golden network trains as usual, but its GEMMs and narrowings go through a `DatapathPolicy`
(`niti_hw.datapath`) for the hardware in `config.hardware`: accumulator width, array tile and
exponent strategy. At the defaults (int32 accumulator, whole-tensor exponent) the weights stay bit
for bit those of the `golden` backend, so checkpoints of the two are interchangeable.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from pathlib import Path

import numpy as np

from ..datapath import DatapathPolicy, SiteStats, with_sites
from ..golden import RoundingPolicy
from ..models import get_model
from . import sim_report
from .build import BuiltNetwork
from .config import TrainConfig
from .integer_run import IntegerRun
from .prepared import PreparedData


class SimBackend(IntegerRun):
    """IntegerRun on the datapath model; counts what the values did per layer and phase."""

    label = "niti-sim"

    def __init__(self, built: BuiltNetwork, data: PreparedData, config: TrainConfig):
        self.hardware = config.hardware_params()
        super().__init__(built, data, config)
        self.net = with_sites(built.net)
        self.built = built
        self.steps: Counter = Counter()  # batch size -> steps trained this epoch
        self.costs: dict = {}  # batch size -> perf's cost table of one step (shapes only)

    def _policy(self, seed: int) -> DatapathPolicy:
        golden = super()._policy(seed)
        policy = DatapathPolicy(**{f.name: getattr(golden, f.name)
                                   for f in dataclasses.fields(RoundingPolicy) if f.init},
                                hardware=self.hardware)
        training = getattr(self, "policy", None)
        if training is not None:  # evaluation starts from the exponents training predicted
            policy.predicted_bits = dict(training.predicted_bits)
        return policy

    def train_batch(self, index: np.ndarray, epoch: int) -> tuple[float, int]:
        result = super().train_batch(index, epoch)
        self.steps[len(index)] += 1
        return result

    def step_costs(self, batch: int):
        """perf's cost table of one step at this batch size, computed once."""
        if batch not in self.costs:
            self.costs[batch] = sim_report.step_costs(
                get_model(self.config.model), self.built.input_shape, self.built.classes, batch,
                self.hardware, self.config.acc_bits)
        return self.costs[batch]

    def write_report(self, out_dir: Path, epoch: int) -> None:
        """The epoch's cycle/energy report (CSV, PNG); printed after the last epoch."""
        steps, stats = self.take_epoch()
        if not steps:
            return
        costs = {batch: self.step_costs(batch) for batch in steps}
        report = sim_report.epoch_report(costs, steps, stats, self.hardware)
        totals = sim_report.phase_totals(report, sum(steps.values()), self.hardware)
        sim_report.write(report, totals, epoch, out_dir)
        if epoch + 1 == self.config.epochs:
            print(sim_report.text(report, totals, self.hardware), flush=True)

    def take_epoch(self) -> tuple[Counter, dict[tuple, SiteStats]]:
        """(steps per batch size, counts per (layer index, phase)) since the last call."""
        steps, self.steps = self.steps, Counter()
        return steps, self.policy.take_stats()
