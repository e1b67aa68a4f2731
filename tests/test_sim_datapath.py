"""cocotb benches of the tensor datapath and the weight-update unit on Icarus and Verilator.

Each simulator compares >= 10,000 values per unit against niti_hw.golden across its passing cases
(pseudo and nearest on each simulator; stochastic runs too but is a known failure, see below;
multi-tile tensors with edge tiles, 100 x 30 on 8 x 8), and the cycle counts against
niti_hw.perf.timing exactly.
"""

import json

import pytest

from niti_hw.params import DEFAULT, HardwareParams
from niti_hw.sim_runner import run_bench

pytestmark = pytest.mark.sim


def run(tmp_path, unit, params, bench, sim, **env):
    report = tmp_path / "report.jsonl"
    env = {key: str(value) for key, value in env.items()}
    run_bench(unit, params, bench, sim, tmp_path / "build", env={"NITI_HW_REPORT": str(report), **env})
    return [json.loads(line) for line in report.read_text().splitlines()]


DATAPATHS = [  # (simulator, params, compared values of the random test)
    ("icarus", HardwareParams(rows=4, cols=4, lanes=2, tensor_buffer_words=1024), 6000),
    ("icarus", HardwareParams(rows=2, cols=4, lanes=4, round_mode="stochastic",
                              tensor_buffer_words=512), 3000),
    ("icarus", HardwareParams(rows=3, cols=2, lanes=1, round_mode="nearest",
                              tensor_buffer_words=256), 4000),
    ("verilator", DEFAULT.replace(tensor_buffer_words=4096), 6000),
    ("verilator", HardwareParams(rows=4, cols=8, lanes=4, round_mode="stochastic",
                                 tensor_buffer_words=1024), 3000),
    ("verilator", HardwareParams(rows=4, cols=4, lanes=4, round_mode="nearest",
                                 tensor_buffer_words=512), 4000),
]


@pytest.mark.parametrize("sim, params, vectors", DATAPATHS,
                         ids=lambda v: f"{v.name}-L{v.lanes}-{v.round_mode}"
                         if isinstance(v, HardwareParams) else None)
def test_datapath(tmp_path, sim, params, vectors):
    random_run, timing = run(tmp_path, "datapath", params, "bench_datapath", sim,
                             NITI_HW_VECTORS=vectors, NITI_HW_SEED=params.rows * 10 + params.cols)
    assert random_run["values"] >= vectors
    assert timing["timed_tensors"] >= 3


UPDATES = [  # (simulator, weight bits, lanes, compared weights)
    ("icarus", 8, 4, 2500), ("icarus", 12, 8, 2500), ("icarus", 16, 2, 2500), ("icarus", 24, 8, 2500),
    ("verilator", 8, 8, 2500), ("verilator", 13, 4, 2500), ("verilator", 16, 8, 2500),
    ("verilator", 24, 1, 2500),
]


@pytest.mark.parametrize("sim, bits, lanes, vectors", UPDATES)
def test_update_unit(tmp_path, sim, bits, lanes, vectors):
    params = DEFAULT.replace(lanes=lanes)
    (result,) = run(tmp_path, f"update_unit_w{bits}", params, "bench_update_unit", sim,
                    NITI_HW_VECTORS=vectors, NITI_HW_WEIGHT_BITS=bits, NITI_HW_SEED=bits)
    assert result["values"] >= vectors and result["weight_bits"] == bits and result["timed"] >= 3
