"""cocotb bench of the core top (`bench_core_top`) on Icarus and Verilator: cocotbext-axi's
AxiLiteMaster, AxiStreamSource and AxiStreamSink drive a whole host flow, compared with the
reference machine (`niti_hw.program.machine.Machine`)."""

import json

import pytest

from niti_hw.params import DEFAULT
from niti_hw.sim_runner import run_bench
from niti_hw.stream_frames import bank_depths

pytestmark = pytest.mark.sim

CORE_TOP = [("icarus", 8, 3), ("verilator", 4, 3)]  # (simulator, lanes, rounds)


@pytest.mark.parametrize("sim, lanes, rounds", CORE_TOP)
def test_core_top_host_flow(tmp_path, sim, lanes, rounds):
    """Rounds of program and banks in by frames, exponents and settings by registers, start,
    poll, every bank back by READ frames: equal to the machine; a frame and a start while busy
    refused."""
    params = DEFAULT.replace(lanes=lanes, ifmap_sram_kib=1, filter_sram_kib=1, ofmap_sram_kib=1,
                             tensor_buffer_words=256)
    report = tmp_path / "report.jsonl"
    run_bench("core_top", params, "bench_core_top", sim, tmp_path / "build",
              env={"NITI_HW_REPORT": str(report), "NITI_HW_VECTORS": str(rounds)})
    reports = {r["test"]: r for r in map(json.loads, report.read_text().splitlines())}
    assert sorted(reports) == ["host_flow", "refusals"]
    beats = sum(bank_depths(params).values())
    flow = reports["host_flow"]
    assert flow["rounds"] == rounds and flow["vectors"] == rounds * beats
    assert flow["values"] == rounds * (beats + 3 + 64)  # beats, status, cycles, stream, exponents
    assert reports["refusals"]["vectors"] == beats
