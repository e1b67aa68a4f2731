"""The core's Verilog on Icarus and Verilator: programs run through the host ports, step after
step, bit-identical to the reference machine, every instruction's cycles equal to the model."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest

from niti_hw.golden import RoundingPolicy
from niti_hw.golden.tensor import TENSOR_KINDS
from niti_hw.models import Conv, Fc, Flat, ModelSpec, Pool, Relu
from niti_hw.params import HardwareParams
from niti_hw.program.isa import KEEP_M_U, Bank, Geometry, Instruction, Opcode, encode
from niti_hw.program.machine import Machine
from niti_hw.sim_runner import SIM_DIR, BenchFailed, run_bench

sys.path.insert(0, str(SIM_DIR))
import core_job  # noqa: E402

pytestmark = pytest.mark.sim

P = HardwareParams(rows=4, cols=4, lanes=4, lfsr_lanes=8, ifmap_sram_kib=1, ofmap_sram_kib=1,
                   filter_sram_kib=1, tensor_buffer_words=256)

CHAIN = [
    Geometry(Opcode.POOL_GEOMETRY, 8, 14, 14, 8, 2, 2, 2, 0, 7, 7),
    Instruction(Opcode.BITWIDTH, a_bank=Bank.ACC, a_base=48, m=13),
    Instruction(Opcode.ROUND, a_bank=Bank.ACC, a_base=48, m=13, keep=5, kind=0,
                dst_bank=Bank.ACT, dst_base=8, a_exp=1, dst_exp=2),
    Instruction(Opcode.RELU, a_bank=Bank.ACT, a_base=8, m=13, dst_bank=Bank.ACT, dst_base=100,
                aux_bank=Bank.ERR, aux_base=200, a_exp=2, dst_exp=3),
    Instruction(Opcode.ROUND, a_bank=Bank.ACC, a_base=96, m=30, keep=KEEP_M_U, kind=2,
                dst_bank=Bank.ERR, dst_base=4),
    Instruction(Opcode.RELU_BACKWARD, a_bank=Bank.ERR, a_base=4, b_bank=Bank.ERR, b_base=200,
                m=13, dst_bank=Bank.ERR, dst_base=300, a_exp=7, dst_exp=5),
    Instruction(Opcode.UPDATE, a_bank=Bank.ERR, a_base=300, m=13, dst_bank=Bank.WEIGHT,
                dst_base=40, n=8),
    Instruction(Opcode.END)]
"""A chain as a step makes one: a tensor narrowed, through ReLU, a gradient narrowed, through the
ReLU's mask, into an update. Random banks make every value and exponent differ step to step."""


def random_loads(p: HardwareParams, seed: int, steps: int):
    """One load per step: every bank and exponent register random (int32 tensors within the
    24-bit range the chain's rounding takes)."""
    rng = np.random.default_rng(seed)

    def load(machine: Machine) -> None:
        for bank, values in machine.banks.items():
            low, high = (-2**23, 2**23) if bank == Bank.ACC else (-128, 128)
            values[:] = rng.integers(low, high, values.size)
        machine.exponents[:] = rng.integers(-40, 41, machine.exponents.size)
    return [load] * steps


def job(tmp_path, p: HardwareParams, items, loads, mode: str, m_u: int):
    machine = Machine(p, RoundingPolicy(*[mode] * len(TENSOR_KINDS), seed=p.lfsr_seed,
                                        n_lanes=p.lfsr_lanes), m_u)
    steps = core_job.run_steps(machine, items, loads, m_u)
    path = tmp_path / "job.npz"
    core_job.save(path, [word for item in items for word in encode(item)], steps)
    return path, steps


def run_core(tmp_path, p, path, sim):
    report = tmp_path / "report.jsonl"
    run_bench("core", p, "bench_core_step", sim, tmp_path / "build",
              env={"NITI_HW_REPORT": str(report), "NITI_HW_JOB": str(path)})
    return [json.loads(line) for line in report.read_text().splitlines()]


@pytest.mark.parametrize("sim, mode", [("icarus", "pseudo"), ("verilator", "stochastic")])
def test_steps_of_a_chain_run_as_the_machine_runs_them(tmp_path, sim, mode):
    path, steps = job(tmp_path, P, CHAIN, random_loads(P, 3, 3), mode, m_u=3)
    [result] = run_core(tmp_path, P, path, sim)
    words = (sum(values.size for values in steps[0].after.values())
             + steps[0].exponents_after.size + steps[0].lfsr_after.size)
    assert result["steps"] == 3 and result["vectors"] == 3 * words


def wrong_err_word(step) -> None:
    step.after[Bank.ERR][300] += 1


def wrong_lfsr_lane(step) -> None:
    step.lfsr_after[3] ^= 1


@pytest.mark.parametrize("change, message", [
    (wrong_err_word, "step 0, ERR bank: 1 words differ"),
    (wrong_lfsr_lane, r"step 0, LFSR lanes: 1 words differ, first at \[3\]")])
def test_a_wrong_expectation_fails_the_bench(tmp_path, change, message):
    """The bench compares what it reads back: one word of the machine's result, or one LFSR
    lane's state, changed fails it, naming the step and what differs."""
    path, steps = job(tmp_path, P, CHAIN, random_loads(P, 3, 1), "stochastic", m_u=3)
    change(steps[0])
    core_job.save(path, core_job.load(path)[0], steps)
    with pytest.raises(BenchFailed, match=message):
        run_core(tmp_path, P, path, "icarus")


def training_job(tmp_path, model, input_chw, batch, mode, m_u, seed=1):
    program, params, steps = core_job.training_steps(model, input_chw, batch, HardwareParams(),
                                                     mode, seed, m_u)
    path = tmp_path / "job.npz"
    core_job.save(path, program.words(), steps)
    return params, path, steps


TINY_CNN = ModelSpec("tiny-cnn", (Conv(2, 3, padding=1), Relu(), Pool(2), Conv(3, 3, stride=2),
                                  Relu(), Pool(2, 1), Flat(), Fc(3)), (10, 10, 1), ())
"""Every opcode of a training step (im2col GEMMs with padding and stride, COL2IM, POOL with
overlapping windows and their backward, LOSS) in a program small enough for the default tests."""


@pytest.mark.parametrize("sim, mode", [("icarus", "stochastic"), ("verilator", "pseudo")])
def test_tiny_cnn_steps_are_golden_training_steps(tmp_path, sim, mode):
    """Two whole training steps of a two-conv CNN on the core's Verilog, every bank, exponent and
    LFSR lane after each step equal to the machine's, whose weights, logits and LFSRs equal golden
    `Sequential.train_step`'s; each instruction's cycles the model's."""
    program, params, steps = core_job.training_steps(TINY_CNN, (1, 10, 10), 2, P, mode, 3, [3, 2])
    path = tmp_path / "job.npz"
    core_job.save(path, program.words(), steps)
    [result] = run_core(tmp_path, params, path, sim)
    assert result["steps"] == 2 and set(result["cycles_by_opcode"]) == {
        item.opcode.name for item in program.instructions if item.opcode != Opcode.END}
    assert {"GEMM", "COL2IM", "POOL", "POOL_BACKWARD", "LOSS", "RELU_BACKWARD",
            "UPDATE"} <= set(result["cycles_by_opcode"])


@pytest.mark.long
@pytest.mark.parametrize("mode", ["pseudo", "stochastic"])
def test_small_cnn_steps_on_verilator_are_golden_training_steps(tmp_path, mode):
    """Three steps of the small CNN (conv-relu-pool x2, fc; 16x16 inputs, batch 4): after every
    step the core's banks (weights, activations, errors) and exponents equal the reference
    machine's, whose weights, logits and LFSRs equal golden `Sequential.train_step`'s."""
    params, path, steps = training_job(tmp_path, "small-cnn", (1, 16, 16), 4, mode, [5, 3, 2])
    [result] = run_core(tmp_path, params, path, "verilator")
    assert result["steps"] == 3 and set(result["cycles_by_opcode"]) >= {
        "GEMM", "COL2IM", "POOL", "POOL_BACKWARD", "LOSS", "RELU", "UPDATE"}


@pytest.mark.long
def test_a_lenet5_step_on_verilator_is_a_golden_training_step(tmp_path):
    """LeNet-5 (20-50-500-10, MNIST 28x28) with memories sized for it: one whole step."""
    params, path, steps = training_job(tmp_path, "lenet5", (1, 28, 28), 2, "stochastic", [3])
    [result] = run_core(tmp_path, params, path, "verilator")
    assert result["steps"] == 1 and result["vectors"] > 10**6
