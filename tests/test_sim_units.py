"""cocotb benches of every RTL unit on Icarus and Verilator (bit-exact against niti_hw.golden).

Vector budgets are sized for CI (two cores, both simulators): together they stream >= 10,000 input
vectors per unit. A missing simulator fails the test with the package to install; nothing is skipped.
"""

import json

import pytest

from niti_hw.params import DEFAULT
from niti_hw.sim_runner import run_bench

pytestmark = pytest.mark.sim


def run(tmp_path, unit, params, bench, sim, **env):
    report = tmp_path / "report.jsonl"
    env = {key: str(value) for key, value in env.items()}
    run_bench(unit, params, bench, sim, tmp_path / "build", env={"NITI_HW_REPORT": str(report), **env})
    return [json.loads(line) for line in report.read_text().splitlines()]


ARRAYS = [  # (simulator, rows, cols, operand vectors)
    ("icarus", 2, 2, 3000), ("icarus", 4, 4, 2500), ("icarus", 3, 5, 2500), ("icarus", 8, 8, 1500),
    ("verilator", 8, 8, 6000), ("verilator", 2, 4, 3000),
]


@pytest.mark.parametrize("sim, rows, cols, vectors", ARRAYS)
def test_systolic_array(tmp_path, sim, rows, cols, vectors):
    lanes = 2 if cols % 2 == 0 else 1
    params = DEFAULT.replace(rows=rows, cols=cols, lanes=lanes)
    random_run, timing = run(tmp_path, "systolic_array", params, "bench_systolic_array", sim,
                             NITI_HW_VECTORS=vectors, NITI_HW_SEED=rows * 10 + cols)
    assert random_run["vectors"] >= vectors
    assert timing["long_gemm"][1] >= 256 and timing["utilisation"] >= 0.95


@pytest.mark.parametrize("sim, vectors", [("icarus", 6000), ("verilator", 6000)])
def test_bitwidth_detector(tmp_path, sim, vectors):
    random_run, _ = run(tmp_path, "bitwidth_detector", DEFAULT, "bench_bitwidth_detector", sim,
                        NITI_HW_VECTORS=vectors)
    assert random_run["vectors"] >= vectors


@pytest.mark.parametrize("mode", ["nearest", "pseudo", "stochastic"])
@pytest.mark.parametrize("sim, vectors", [("icarus", 2500), ("verilator", 2500)])
def test_shift_round(tmp_path, sim, vectors, mode):
    (result,) = run(tmp_path, f"shift_round_{mode}", DEFAULT, "bench_shift_round", sim,
                    NITI_HW_VECTORS=vectors, NITI_HW_MODE=mode)
    assert result["vectors"] >= vectors and result["mode"] == mode
