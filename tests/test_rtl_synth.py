"""Synthesis flow on one small unit (the full table comes from `niti-hw synth`, see README)."""

import sys

import pandas as pd
import pytest

from niti_hw.params import DEFAULT
from niti_hw.rtl.synth import SynthJob, run_jobs, synth_yosys, to_markdown, write_design


@pytest.mark.synth
def test_small_unit_synthesises_and_places(tmp_path):
    params = DEFAULT.replace(rows=2, cols=2, lanes=1)
    table = run_jobs([SynthJob("systolic_array", params)], tmp_path, ice40=True, pnr=True)
    (row,) = table.to_dict("records")
    assert row["unit"] == "systolic_array" and row["size"] == "2x2"
    assert row["ecp5_dsp"] == 4 or row["ecp5_lut4"] > 100  # 4 multipliers: DSPs or LUT logic
    assert row["ecp5_ff"] >= 4 * 32  # at least the four accumulators survive the optimiser
    assert row["ecp5_fmax_mhz"] > 0 and row["ice40_lut4"] > 0


def test_markdown_table():
    table = pd.DataFrame([{"unit": "a", "fmax": 1.5, "dsp": None}])
    assert to_markdown(table).splitlines() == ["| unit | fmax | dsp |", "|---|---|---|", "| a | 1.5 |  |"]


def test_ecp5_build_uses_registered_dsps(tmp_path):
    """The ECP5 netlist takes one MULT18X18D per PE with its registers; other targets keep `*`."""
    from niti_hw.rtl.synth import write_design

    job = SynthJob("systolic_array", DEFAULT.replace(rows=2, cols=2, lanes=1))
    ecp5 = write_design(job, tmp_path, "ecp5").read_text()
    ice40 = write_design(job, tmp_path, "ice40").read_text()
    assert ecp5.count("MULT18X18D ") == 4 and "REG_OUTPUT_CLK" in ecp5
    assert "MULT18X18D" not in ice40


@pytest.mark.synth
def test_classic_abc_mapping_keeps_registers_and_dsps(tmp_path):
    """The top's LUT mapper (CLASSIC_ABC_UNITS) maps a unit to the same flip-flops and DSPs as ABC9."""
    job = SynthJob("systolic_array", DEFAULT.replace(rows=2, cols=2, lanes=1))
    counts = {}
    for classic in (False, True):
        work = tmp_path / f"classic_{classic}"
        write_design(job, work, "ecp5")
        counts[classic] = synth_yosys(work, "ecp5", classic_abc=classic)
        assert (work / "design.json").stat().st_size > 0
    assert counts[True]["TRELLIS_FF"] == counts[False]["TRELLIS_FF"] >= 4 * 32
    assert counts[True]["MULT18X18D"] == counts[False]["MULT18X18D"] == 4
    assert counts[True]["LUT4"] > 0


def test_a_failing_tool_is_reported_as_the_tools_failure(tmp_path):
    """A tool's non-zero exit is an expected error (one CLI line naming the tool and its log), not
    a bug of niti-hw."""
    from niti_hw.commands import EXPECTED_ERRORS
    from niti_hw.rtl.synth import _run

    with pytest.raises(ChildProcessError, match=r"python\S* failed in .* \(see tool\.log\): boom") as caught:
        _run([sys.executable, "-c", "import sys; sys.exit('boom')"], tmp_path, "tool.log")
    assert isinstance(caught.value, EXPECTED_ERRORS)
    assert "boom" in (tmp_path / "tool.log").read_text()
