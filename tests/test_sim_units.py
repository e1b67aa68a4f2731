"""cocotb benches of every RTL unit on Icarus and Verilator (bit-exact against niti_hw.golden).

Each bench records what its scoreboard compared: `vectors` (output beats) and `values` (the
fields in them). Every run must check at least its share below, and the shares of each unit add up
to >= 10,000 checked output beats per simulator (test_vector_shares_reach_the_target). A missing
simulator fails the test with the package to install; nothing is skipped.
"""

import json
import sys
from collections import Counter

import pytest

from niti_hw.params import DEFAULT
from niti_hw.sim_runner import SIM_DIR, run_bench
from niti_hw.stream_frames import bank_depths

sys.path.insert(0, str(SIM_DIR))
from stream_host import kinds  # noqa: E402

pytestmark = pytest.mark.sim

TARGET = 10_000  # checked output beats per unit per simulator


def run(tmp_path, unit, params, bench, sim, **env):
    report = tmp_path / "report.jsonl"
    env = {key: str(value) for key, value in env.items()}
    run_bench(unit, params, bench, sim, tmp_path / "build", env={"NITI_HW_REPORT": str(report), **env})
    return [json.loads(line) for line in report.read_text().splitlines()]


ARRAYS = [  # (simulator, rows, cols, result rows checked by the random-GEMM test)
    ("icarus", 2, 2, 3000), ("icarus", 4, 4, 3000), ("icarus", 3, 5, 2500), ("icarus", 8, 8, 1500),
    ("verilator", 8, 8, 6000), ("verilator", 2, 4, 4000),
]
DETECTORS = [("icarus", 10_000), ("verilator", 10_000)]  # (simulator, tensors = output beats)
ROUNDING = [("icarus", 3400), ("verilator", 3400)]  # (simulator, beats per mode)
MODES = ("nearest", "pseudo", "stochastic")


def test_vector_shares_reach_the_target():
    shares = Counter()
    for sim, _, _, vectors in ARRAYS:
        shares["systolic_array", sim] += vectors
    for sim, vectors in DETECTORS:
        shares["bitwidth_detector", sim] += vectors
    for sim, vectors in ROUNDING:
        shares["shift_round", sim] += vectors * len(MODES)
    assert len(shares) == 6 and min(shares.values()) >= TARGET, shares


@pytest.mark.parametrize("sim, rows, cols, vectors", ARRAYS)
def test_systolic_array(tmp_path, sim, rows, cols, vectors):
    lanes = 2 if cols % 2 == 0 else 1
    params = DEFAULT.replace(rows=rows, cols=cols, lanes=lanes)
    random_run, timing = run(tmp_path, "systolic_array", params, "bench_systolic_array", sim,
                             NITI_HW_VECTORS=vectors, NITI_HW_SEED=rows * 10 + cols)
    assert random_run["vectors"] >= vectors and random_run["values"] == random_run["vectors"] * (cols + 1)
    assert timing["long_gemm"][1] >= 256 and timing["utilisation"] >= 0.95
    assert timing["vectors"] == 4 * rows  # the long GEMM's 2 x 2 tiles, every row checked


@pytest.mark.parametrize("sim, vectors", DETECTORS)
def test_bitwidth_detector(tmp_path, sim, vectors):
    random_run, timing = run(tmp_path, "bitwidth_detector", DEFAULT, "bench_bitwidth_detector", sim,
                             NITI_HW_VECTORS=vectors)
    assert random_run["vectors"] == random_run["values"] == vectors
    assert timing["vectors"] == 100


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("sim, vectors", ROUNDING)
def test_shift_round(tmp_path, sim, vectors, mode):
    (result,) = run(tmp_path, f"shift_round_{mode}", DEFAULT, "bench_shift_round", sim,
                    NITI_HW_VECTORS=vectors, NITI_HW_MODE=mode)
    assert result["vectors"] >= vectors and result["mode"] == mode
    # keep, last and k of every beat, and data of every kept lane (all lanes of a refused beat)
    assert 3 * result["vectors"] < result["values"] <= (3 + DEFAULT.lanes) * result["vectors"]
    assert result["refused"] > 0


RELUS = [  # (simulator, direction, lanes): >= RELU_VALUES values compared per run
    ("icarus", "forward", 8), ("icarus", "backward", 4),
    ("verilator", "forward", 4), ("verilator", "backward", 8),
]
RELU_VALUES = 10_000


@pytest.mark.parametrize("sim, direction, lanes", RELUS)
def test_relu(tmp_path, sim, direction, lanes):
    unit = "relu" if direction == "forward" else "relu_backward"
    random_run, timing = run(tmp_path, unit, DEFAULT.replace(lanes=lanes), "bench_relu", sim,
                             NITI_HW_VECTORS=RELU_VALUES, NITI_HW_RELU=direction)
    per_beat = lanes + (2 if direction == "forward" else 1)  # data, mask (forward) and last
    assert random_run["values"] >= RELU_VALUES
    assert random_run["values"] == random_run["vectors"] * per_beat
    assert timing["timed"] == 20


POOLS = [  # (simulator, direction, kernel, lanes): >= POOL_VALUES values compared per run
    ("icarus", "forward", 2, 8), ("icarus", "backward", 3, 4),
    ("verilator", "forward", 3, 4), ("verilator", "backward", 2, 8),
]
POOL_VALUES = 10_000


@pytest.mark.parametrize("sim, direction, kernel, lanes", POOLS)
def test_max_pool(tmp_path, sim, direction, kernel, lanes):
    unit = f"max_pool_k{kernel}" if direction == "forward" else f"max_pool_backward_k{kernel}"
    random_run, timing = run(tmp_path, unit, DEFAULT.replace(lanes=lanes), "bench_max_pool", sim,
                             NITI_HW_VECTORS=POOL_VALUES, NITI_HW_POOL=direction,
                             NITI_HW_KERNEL=kernel)
    per_beat = 2 * lanes + 1 if direction == "forward" else lanes + 1  # data, index, last
    assert random_run["values"] >= POOL_VALUES
    assert random_run["values"] == random_run["vectors"] * per_beat
    assert timing["timed"] == 8


LOSSES = [  # (simulator, rounding mode, most classes, lanes): >= LOSS_VALUES values per run
    ("icarus", "pseudo", 10, 8), ("icarus", "stochastic", 10, 4),
    ("verilator", "nearest", 16, 4), ("verilator", "stochastic", 10, 2),
]
LOSS_VALUES = 6_000


@pytest.mark.parametrize("sim, mode, classes, lanes", LOSSES)
def test_loss_gradient(tmp_path, sim, mode, classes, lanes):
    unit = "loss_gradient" if classes == 10 else f"loss_gradient_c{classes}"
    params = DEFAULT.replace(lanes=lanes, round_mode=mode)
    random_run, refusals, timing = run(tmp_path, unit, params, "bench_loss_gradient", sim,
                                       NITI_HW_VECTORS=LOSS_VALUES, NITI_HW_CLASSES=classes,
                                       NITI_HW_SEED=lanes)
    assert random_run["values"] >= LOSS_VALUES
    # keep and last of every beat, data of every kept lane
    assert 2 * random_run["vectors"] < random_run["values"] <= (2 + lanes) * random_run["vectors"]
    # refused rows in two or three valid tensors; classes 0 and every count above the most
    assert refusals["refused"] >= 2 + (1 << classes.bit_length()) - classes
    assert timing["timed"] == 8


AXI_LITE = [("icarus", 1), ("verilator", 2)]  # (simulator, seed)
AXI_LITE_WRITES = 200  # random RW writes, each read back


@pytest.mark.parametrize("sim, seed", AXI_LITE)
def test_axi_lite_control_registers(tmp_path, sim, seed):
    """cocotbext-axi's AxiLiteMaster on ControlRegisters: reset values and HardwareParams, RW
    registers with random WSTRB, AW/W order and backpressure, RO fields, SLVERR, runs and CYCLES;
    every response's latency against niti_hw.perf.timing.AXI_LITE_LATENCY."""
    from niti_hw.registers import register_map

    reports = {r["test"]: r for r in run(tmp_path, "control_registers", DEFAULT, "bench_axi_lite",
                                         sim, NITI_HW_VECTORS=AXI_LITE_WRITES, NITI_HW_SEED=seed)}
    assert sorted(reports) == ["reset", "runs", "rw", "unmapped"]
    registers = len(register_map(DEFAULT).registers)
    assert reports["reset"]["values"] >= 2 * registers + 9  # response and value, HW_* fields
    rw = reports["rw"]
    assert sum(rw[lead] for lead in ("together", "aw", "w", "master")) == AXI_LITE_WRITES
    assert min(rw[lead] for lead in ("together", "aw", "w", "master")) > 0
    assert rw["values"] >= 5 * AXI_LITE_WRITES  # 2 responses, the value, 2 latencies per write
    assert reports["unmapped"]["unmapped"] >= 40
    runs = reports["runs"]
    assert runs["runs"] == 12 and len(set(runs["cycles"])) > 1


STREAM_LOADER = [  # (simulator, lanes, 1 KiB banks or the defaults, random frames)
    ("icarus", 8, True, 300), ("verilator", 2, True, 300), ("verilator", 8, False, 60),
]


@pytest.mark.parametrize("sim, lanes, small, frames", STREAM_LOADER)
def test_stream_loader(tmp_path, sim, lanes, small, frames):
    """cocotbext-axi's AxiStreamSource and AxiStreamSink on StreamLoader: random frames of every
    kind with gaps and backpressure (error codes, answers, every bank word read back against the
    host model), and full-rate cycles against niti_hw.perf.timing."""
    params = DEFAULT.replace(lanes=lanes)
    if small:
        params = params.replace(ifmap_sram_kib=1, filter_sram_kib=1, ofmap_sram_kib=1,
                                tensor_buffer_words=64)
    reports = {r["test"]: r for r in run(tmp_path, "stream_loader", params,
                                         "bench_stream_loader", sim, NITI_HW_VECTORS=frames)}
    random_run, full_rate = reports["random"], reports["full_rate"]
    assert set(random_run["frames"]) == set(kinds(params))
    assert sum(random_run["frames"].values()) == frames and min(random_run["frames"].values()) > 0
    words = sum(bank_depths(params).values())
    assert random_run["vectors"] >= words + random_run["frames"]["read"]  # every word read back
    assert full_rate["frames"] == 40 and full_rate["reads"] > 0
    assert full_rate["values"] >= full_rate["vectors"] + 40  # answers, plus a count per frame


CORE = DEFAULT.replace(rows=4, cols=4, lanes=4, lfsr_lanes=8, ifmap_sram_kib=1, ofmap_sram_kib=1,
                       filter_sram_kib=1, tensor_buffer_words=256)
CORE_BANKS_COMPARED = 1024 + 1024 + 256 + 3  # ACT, ERR and ACC words, 3 exponents per program
CORE_VALUES = 9_000


@pytest.mark.parametrize("sim, seed", [("icarus", 1), ("verilator", 2)])
def test_core_geometry_engines(tmp_path, sim, seed):
    """POOL, POOL_BACKWARD and COL2IM programs on the Core's Verilog, against the machine."""
    (report,) = run(tmp_path, "core", CORE, "bench_core_geometry", sim,
                    NITI_HW_VECTORS=CORE_VALUES, NITI_HW_SEED=seed)
    assert report["values"] >= CORE_VALUES and report["timed"] == report["runs"]
    assert report["values"] == report["runs"] * CORE_BANKS_COMPARED
