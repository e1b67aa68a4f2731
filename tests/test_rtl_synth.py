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


def _netlist(work):
    import json

    return json.loads((work / "design.json").read_text())["modules"]["wrap"]


def _bits(netlist, wire):
    found = [v["bits"] for name, v in netlist["netnames"].items() if name.endswith(wire)]
    assert len(found) == 1, f"{len(found)} wires named *{wire} in the netlist (0: merged or removed)"
    return found[0]


@pytest.mark.synth
def test_each_pe_keeps_its_own_flags(tmp_path):
    """PEs (0, 1) and (1, 0) sit on one anti-diagonal, so their valid flags are equal; the flow keeps
    one flip-flop each (systolic_array.LOCAL) instead of one shared across the array."""
    job = SynthJob("systolic_array", DEFAULT.replace(rows=2, cols=2, lanes=1))
    write_design(job, tmp_path, "ecp5")
    synth_yosys(tmp_path, "ecp5")
    netlist = _netlist(tmp_path)
    assert _bits(netlist, "unit.pe0_1_v") != _bits(netlist, "unit.pe1_0_v")


@pytest.mark.synth
def test_keep_registers_only_for_marked_wires(tmp_path):
    """KEEP_REGISTERS keeps equal registers apart when their wires say `keep`, and only then."""
    from amaranth.hdl import Cat, Module, Signal
    from amaranth.lib import wiring
    from amaranth.lib.wiring import In, Out

    from niti_hw.rtl.synth import write_component

    class Twins(wiring.Component):
        def __init__(self, attrs):
            self.attrs = attrs
            super().__init__({"d": In(1), "q": Out(2)})

        def elaborate(self, platform):
            m = Module()
            a = Signal(name="twin_a", attrs=self.attrs)
            b = Signal(name="twin_b", attrs=self.attrs)
            m.d.sync += [a.eq(self.d), b.eq(self.d)]
            m.d.comb += self.q.eq(Cat(a, b))
            return m

    flops = {}
    for keep in (False, True):
        work = tmp_path / f"keep_{keep}"
        write_component(Twins({"keep": 1} if keep else {}), work, "ecp5")
        flops[keep] = synth_yosys(work, "ecp5").get("TRELLIS_FF", 0)
    netlist = _netlist(tmp_path / "keep_True")
    assert _bits(netlist, "unit.twin_a") != _bits(netlist, "unit.twin_b")
    assert flops[False] < flops[True]  # unmarked, the twins (and what reads them) merge


@pytest.mark.synth
def test_scratchpad_rams_feed_registers_directly(tmp_path):
    """Each scratchpad bank is four byte-wide block RAMs, each read straight into a flip-flop: no
    depth mux and no collision bypass between a RAM and its register (the top's slowest path)."""
    from niti_hw.rtl.scratchpad import BYTES, Scratchpad
    from niti_hw.rtl.synth import write_component

    params = DEFAULT.replace(rows=2, cols=2, lanes=2, lfsr_lanes=2, tensor_buffer_words=4096)
    write_component(Scratchpad(params), tmp_path, "ecp5")
    cells = synth_yosys(tmp_path, "ecp5")
    assert cells["DP16KD"] == BYTES * params.cols
    netlist = _netlist(tmp_path)
    sinks = {}
    for cell in netlist["cells"].values():
        for port, bits in cell["connections"].items():
            if cell["port_directions"].get(port) == "input":
                for bit in bits:
                    sinks.setdefault(bit, []).append((cell["type"], port))
    ram_outputs = [bit for cell in netlist["cells"].values() if cell["type"] == "DP16KD"
                   for port, bits in cell["connections"].items() if port.startswith("DOB")
                   for bit in bits if isinstance(bit, int) and bit in sinks]
    assert len(ram_outputs) == 32 * params.cols
    through_logic = [sinks[bit] for bit in ram_outputs if sinks[bit] != [("TRELLIS_FF", "DI")]]
    assert not through_logic, f"{len(through_logic)} RAM output bits reach logic before a " \
        f"flip-flop, e.g. {through_logic[:3]}"
