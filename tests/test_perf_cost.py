"""perf.cost: a small GEMM costed by hand, spills, stalls, the fp32 twin, and conservation properties."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from niti_hw.params import DEFAULT, HardwareParams
from niti_hw.perf import timing
from niti_hw.perf.clock import CORE_UNITS, clock_mhz
from niti_hw.perf.cost import estimate, totals
from niti_hw.perf.energy import DEFAULT_PJ
from niti_hw.perf.lowering import gemm_op, lower


def rows_of(table):
    return {op: row for op, row in zip(table["op"], table.to_dict("records"))}


def test_8x8x8_gemm_by_hand():
    table = estimate(gemm_op(8, 8, 8), DEFAULT)
    rows = rows_of(table)
    gemm, detect, rounding = rows["gemm"], rows["bitwidth"], rows["round"]
    # Last beat at 7, row 0 13 cycles later, row 7 seven later, two row registers.
    assert gemm["compute_cycles"] == 7 + 13 + 7 + 2 == 29
    assert (gemm["dram_read_bytes"], gemm["dram_write_bytes"]) == (64 + 64, 0)
    assert gemm["sram_read_bytes"] == 64 + 64  # A and B once each into the array
    assert gemm["sram_write_bytes"] == 128 + 64 * 4  # operands in, int32 results into the buffer
    assert gemm["stall_cycles"] == 0 and gemm["utilisation"] == 512 / (64 * 29)
    assert detect["cycles"] == timing.DETECTOR_LATENCY + timing.K_LATCH  # on the drain
    assert rounding["cycles"] == 64 // 8 + timing.SCRATCHPAD_READ_LATENCY + timing.ROUND_LATENCY
    assert gemm["cycles"] + detect["cycles"] + rounding["cycles"] \
        == timing.tensor_gemm_cycles(8, 8, 8, DEFAULT)
    assert (rounding["sram_read_bytes"], rounding["dram_write_bytes"]) == (256, 64)
    # Every buffer is 64 KiB, on the power law from 32 KiB (2.5 pJ/B) to 1 MiB (12.5 pJ/B):
    # 2.5 * (64 / 32) ** (log 5 / log 32) = 2.5 * 5 ** (1 / 5).
    sram = 2.5 * 5 ** (1 / 5)
    expected = 512 * DEFAULT_PJ["int8_mac"] + 512 * 2 * DEFAULT_PJ["register_byte"] \
        + (128 + 128 + 256) * sram + 128 * DEFAULT_PJ["dram_read_byte"]
    assert gemm["energy_pj"] == pytest.approx(expected)


@given(st.integers(1, 8), st.integers(1, 8), st.integers(1, 40), st.integers(1, 300),
       st.integers(1, 300), st.integers(1, 300))
@settings(max_examples=60)
def test_os_rows_of_a_gemm_add_up_to_the_rtl_tensor_datapath(rows, cols, max_lanes, m, n, k):
    """GEMM, bitwidth and rounding rows together are the RTL tensor datapath's cycle count."""
    lanes = max(d for d in range(1, cols + 1) if cols % d == 0 and 16 % d == 0 and d <= max_lanes)
    params = HardwareParams(rows=rows, cols=cols, lanes=lanes)
    table = estimate(gemm_op(m, n, k), params.replace(dram_bytes_per_cycle=1e9))
    assert table["cycles"].sum() == timing.tensor_gemm_cycles(m, n, k, params)


def test_a_tensor_larger_than_the_buffer_spills_and_is_read_back():
    params = DEFAULT.replace(tensor_buffer_words=64)
    rows = rows_of(estimate(gemm_op(16, 8, 8), params))
    assert rows["gemm"]["spill_bytes"] == rows["gemm"]["dram_write_bytes"] == 64 * 4
    assert rows["round"]["dram_read_bytes"] == 64 * 4
    assert rows["round"]["sram_read_bytes"] == 64 * 4


def test_dram_bandwidth_bounds_an_op():
    rows = rows_of(estimate(gemm_op(8, 8, 8), DEFAULT.replace(dram_bytes_per_cycle=0.5)))
    assert rows["gemm"]["stall_cycles"] == 128 * 2 - 29
    assert rows["gemm"]["cycles"] == 256


def test_fp32_datapath_drops_the_narrowing_and_moves_four_bytes():
    table = estimate(gemm_op(8, 8, 8), DEFAULT, datapath="fp32")
    assert list(table["op"]) == ["gemm"]
    gemm = table.iloc[0]
    assert gemm["compute_cycles"] == timing.array_gemm_cycles(8, 8, 8, DEFAULT)
    assert (gemm["dram_read_bytes"], gemm["dram_write_bytes"]) == (4 * 128, 4 * 64)
    assert gemm["energy_mac_pj"] == pytest.approx(512 * DEFAULT_PJ["fp32_mac"])


def test_weight_and_input_stationary_gemms():
    ws = rows_of(estimate(gemm_op(8, 8, 8), DEFAULT.replace(dataflow="weight_stationary")))
    assert ws["gemm"]["compute_cycles"] == timing.stationary_gemm_cycles(8, 8, 8, DEFAULT) == 34
    # K = 20 over 8 rows: three K folds, two rounds of partial sums through the ofmap SRAM.
    ws = rows_of(estimate(gemm_op(8, 8, 20), DEFAULT.replace(dataflow="weight_stationary")))
    is_ = rows_of(estimate(gemm_op(8, 8, 20), DEFAULT.replace(dataflow="input_stationary")))
    assert ws["gemm"]["sram_read_bytes"] == 160 + 160 + 2 * 64 * 4
    assert is_["gemm"]["sram_read_bytes"] == 160 + 160 + 2 * 64 * 4


def test_scalesim_timing_keeps_gemms_only():
    table = estimate(lower("lenet5", (1, 28, 28), 4), DEFAULT, timing_model="scalesim")
    assert set(table["op"]) == {"gemm"} and table["stall_cycles"].sum() == 0
    first = table.iloc[0]
    assert first["cycles"] == timing.scalesim_gemm_cycles(
        first["m"], first["n"], first["k"], "output_stationary", DEFAULT)


@given(st.sampled_from(["lenet5", "vgg-small-7"]), st.integers(1, 8),
       st.integers(64, 40000), st.sampled_from(["output_stationary", "weight_stationary",
                                                "input_stationary"]))
@settings(max_examples=25)
def test_bytes_are_conserved_over_a_step(model, batch, words, dataflow):
    """What spills is read back exactly once; utilisation never exceeds 1; totals add up."""
    shape = (1, 28, 28) if model == "lenet5" else (3, 16, 16)
    params = DEFAULT.replace(tensor_buffer_words=words, dataflow=dataflow)
    table = estimate(lower(model, shape, batch), params)
    records = table.to_dict("records")
    for index, row in enumerate(records):
        if row["op"] == "round":
            producer = records[index - 2]  # gemm or col2im, then bitwidth, then round
            detect = records[index - 1]
            assert producer["op"] in ("gemm", "col2im") and detect["op"] == "bitwidth"
            assert row["dram_read_bytes"] == producer["spill_bytes"]
            assert detect["dram_read_bytes"] in (0, producer["spill_bytes"])
    assert (table["utilisation"] <= 1).all()
    step = totals(table, params, 100.0).loc["step"]
    assert step["cycles"] == table["cycles"].sum()
    assert step["energy_pj"] == pytest.approx(table[[c for c in table if c.startswith("energy_")
                                                     and c != "energy_pj"]].to_numpy().sum())


@pytest.mark.parametrize("batch, classes", [(1, 10), (32, 10), (8, 3)])
def test_loss_row_is_the_rtl_loss_unit(batch, classes):
    """The loss gradient runs on LossGradient: m = samples, n = classes, its cycles the RTL's
    (timing.loss_cycles, which tests/test_rtl_loss.py measures), a row at a time."""
    table = estimate(lower("lenet5", (1, 28, 28), batch, classes=classes), DEFAULT)
    (loss,) = table[table["op"] == "loss_gradient"].to_dict("records")
    assert (loss["m"], loss["n"], loss["runs_on"]) == (batch, classes, "rtl")
    assert loss["compute_cycles"] == timing.loss_cycles(batch, classes)
    assert loss["compute_cycles"] == 1 + batch * (15 * classes + 13) + 2 + 9


def test_totals_per_epoch_and_time():
    table = estimate(gemm_op(8, 8, 8), DEFAULT)
    summary = totals(table, DEFAULT, 100.0, steps_per_epoch=10)
    assert summary.loc["epoch", "cycles"] == 10 * summary.loc["step", "cycles"]
    assert summary.loc["step", "time_ms"] == pytest.approx(summary.loc["step", "cycles"] / 1e5)


def test_clock_from_the_synthesis_report(tmp_path):
    """A size's clock is its top's slowest seed, else its array's; a size not in the report takes
    the largest one's; a given clock wins; no report is a clear error."""
    report = tmp_path / "synth_report.csv"
    report.write_text("unit,size,ecp5_fmax_mhz,seed\n"
                      "systolic_array,8x8,160.5,1\nsystolic_array,8x8,150.25,2\n"
                      "systolic_array,8x8,170.0,3\nsystolic_array,4x4,190.0,1\n"
                      "training_core,4x4,180.0,1\ntraining_core,4x4,185.0,2\n"
                      "shift_round_pseudo,8x8,10.0,1\n")
    assert clock_mhz(DEFAULT, report) == (150.25, "synth_report.csv systolic_array 8x8, slowest of "
                                                  "3 seeds")
    assert clock_mhz(DEFAULT.replace(rows=4, cols=4, lanes=4), report) == (
        180.0, "synth_report.csv training_core 4x4, slowest of 2 seeds")
    mhz, source = clock_mhz(HardwareParams(rows=16, cols=16, lanes=16), report)
    assert mhz == 150.25 and source.endswith("8x8, slowest of 3 seeds; largest synthesised, 16x16 "
                                             "not in the report")
    assert clock_mhz(DEFAULT.replace(clock_mhz=99.5), report)[0] == 99.5
    assert clock_mhz(DEFAULT)[0] > 0  # the checked-in report has the default size
    with pytest.raises(ValueError, match="has no core row; give the clock"):
        clock_mhz(DEFAULT, report, CORE_UNITS)  # the core takes no other unit's clock
    with report.open("a") as handle:
        handle.write("core,8x8,80.5,1\ncore,8x8,78.0,2\n")
    assert clock_mhz(DEFAULT, report, CORE_UNITS) == (
        78.0, "synth_report.csv core 8x8, slowest of 2 seeds")
    assert clock_mhz(DEFAULT, report)[0] == 150.25  # the datapath's estimate keeps its own
    with pytest.raises(ValueError, match=r"no synthesis report at .*; give the clock with "
                                         r"--clock-mhz"):
        clock_mhz(DEFAULT, tmp_path / "missing.csv")
