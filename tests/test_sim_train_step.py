"""NITI training steps on the RTL (Verilator): final weights bit-identical to the golden model, cycles
of every phase equal to the timing model (the bench asserts both)."""

import json

import pytest

from niti_hw.params import DEFAULT, HardwareParams
from niti_hw.sim_runner import run_bench

pytestmark = pytest.mark.sim

CASES = [  # (params, stored weight bits)
    (DEFAULT.replace(tensor_buffer_words=2048), 16),  # the largest tensor is 64 x 32
    (HardwareParams(rows=4, cols=4, lanes=4, round_mode="stochastic", tensor_buffer_words=2048), 8),
]


@pytest.mark.parametrize("params, weight_bits", CASES,
                         ids=lambda v: f"{v.name}-{v.round_mode}" if isinstance(v, HardwareParams)
                         else f"w{v}")
def test_training_steps_on_rtl(tmp_path, params, weight_bits):
    report = tmp_path / "report.jsonl"
    run_bench(f"training_core_w{weight_bits}", params, "bench_train_step", "verilator",
              tmp_path / "build", env={"NITI_HW_REPORT": str(report), "NITI_HW_BATCHES": "3",
                                       "NITI_HW_WEIGHT_BITS": str(weight_bits)})
    (result,) = [json.loads(line) for line in report.read_text().splitlines()]
    assert result["batches"] == 3 and result["mode"] == params.round_mode
    assert set(result["cycles"]) == {"forward", "error", "gradient", "update"}
