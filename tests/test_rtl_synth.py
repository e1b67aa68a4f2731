"""Synthesis flow on one small unit (the full table comes from `niti-hw synth`, see README)."""

import sys

import pandas as pd
import pytest

from niti_hw.params import DEFAULT

pytest.importorskip("amaranth", reason="needs the rtl extra: pip install 'niti-hw[rtl]'")

from niti_hw.rtl.synth import SynthJob, run_jobs, synth_yosys, to_markdown, write_design  # noqa: E402


@pytest.mark.synth
def test_small_unit_synthesises_and_places(tmp_path):
    params = DEFAULT.replace(rows=2, cols=2, lanes=1)
    table = run_jobs([SynthJob("systolic_array", params)], tmp_path, ice40=True, pnr=True)
    (row,) = table.to_dict("records")
    assert row["unit"] == "systolic_array" and row["size"] == "2x2"
    assert row["ecp5_dsp"] == 4 or row["ecp5_lut4"] > 100  # 4 multipliers: DSPs or LUT logic
    assert row["ecp5_ff"] >= 4 * 32  # at least the four accumulators survive the optimiser
    assert row["ecp5_fmax_mhz"] > 0 and row["ice40_lut4"] > 0


@pytest.mark.synth
def test_router2_places_the_clock_on_its_clock_pin(tmp_path):
    """The core's flow (ROUTER2_UNITS): router2, with clk constrained to CLOCK_PIN's bel."""
    from niti_hw.rtl.synth import place_route_ecp5

    write_design(SynthJob("systolic_array", DEFAULT.replace(rows=2, cols=2, lanes=1)), tmp_path, "ecp5")
    synth_yosys(tmp_path, "ecp5")
    assert place_route_ecp5(tmp_path, seed=2, router2=True) > 0
    log = (tmp_path / "nextpnr_s2.log").read_text()
    assert "Running router2" in log and "pin 'clk$tr_io' constrained to Bel" in log


def test_router2_units_are_synthesised_units():
    from niti_hw.rtl.synth import ROUTER2_UNITS, default_jobs

    assert ROUTER2_UNITS <= {job.unit for job in default_jobs(DEFAULT)}


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


@pytest.mark.skipif(sys.platform != "linux", reason="parent-death signal is Linux only")
def test_a_tool_dies_with_the_process_that_ran_it(tmp_path):
    """A study killed with kill -9 during synthesis must not leave the tool running: a parent
    running a long tool through `_run` is killed, and the tool goes with it."""
    import os
    import signal
    import subprocess
    import time

    pid_file = tmp_path / "tool.pid"
    tool = f"import os, time; open({str(pid_file)!r}, 'w').write(str(os.getpid())); time.sleep(600)"
    parent = subprocess.Popen([sys.executable, "-c",
                               "import sys; from pathlib import Path; from niti_hw.rtl.synth import _run; "
                               f"_run([sys.executable, '-c', {tool!r}], Path({str(tmp_path)!r}), 'tool.log')"])
    for _ in range(300):
        if pid_file.exists() and pid_file.read_text():
            break
        time.sleep(0.1)
    tool_pid = int(pid_file.read_text())
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    for _ in range(100):
        try:
            os.kill(tool_pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    os.kill(tool_pid, signal.SIGKILL)
    raise AssertionError(f"the tool (pid {tool_pid}) outlived its killed parent")


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
    one flip-flop each (target.LOCAL) instead of one shared across the array."""
    job = SynthJob("systolic_array", DEFAULT.replace(rows=2, cols=2, lanes=1))
    write_design(job, tmp_path, "ecp5")
    synth_yosys(tmp_path, "ecp5")
    netlist = _netlist(tmp_path)
    assert _bits(netlist, "unit.pe0_1_v") != _bits(netlist, "unit.pe1_0_v")


@pytest.mark.synth
def test_accumulator_is_written_by_its_carry_chain(tmp_path):
    """Every accumulator bit's flip-flop takes its D straight from the PE's adder (a CCU2C sum):
    a tile's first product is added to a masked accumulator, with no select LUT after the chain."""
    job = SynthJob("systolic_array", DEFAULT.replace(rows=2, cols=2, lanes=1))
    write_design(job, tmp_path, "ecp5")
    synth_yosys(tmp_path, "ecp5")
    netlist = _netlist(tmp_path)
    driver = {bit: cell["type"] for cell in netlist["cells"].values()
              for port, bits in cell["connections"].items()
              if cell["port_directions"][port] == "output" for bit in bits}
    d_of_q = {cell["connections"]["Q"][0]: cell["connections"]["DI"][0]
              for cell in netlist["cells"].values() if cell["type"] == "TRELLIS_FF"}
    for pe in ("pe0_0", "pe0_1", "pe1_0", "pe1_1"):
        acc = _bits(netlist, f"{pe}_acc")
        drivers = [driver.get(d_of_q.get(bit)) for bit in acc]
        fed_by = sorted(set(map(str, drivers)))
        assert drivers == ["CCU2C"] * len(acc), f"{pe}_acc bits fed by {fed_by}"


@pytest.mark.synth
@pytest.mark.parametrize("unit, twins", [
    ("shift_round_pseudo", ("unit.out_buffer_ready", "unit.out_buffer_en")),
    ("datapath", ("unit.drain_valid0", "unit.tile_valid0")),
])
def test_far_consumers_get_their_own_copy(tmp_path, unit, twins):
    """A register read in two places far apart is kept twice (target.LOCAL): the rounder's ready
    for the replay control beside its pipeline enable, a drained row's valid for the tile counters
    beside the one for the scratchpad write."""
    from niti_hw.rtl.synth import write_component
    from niti_hw.rtl.verilog import build_unit

    params = DEFAULT.replace(rows=2, cols=2, lanes=2, lfsr_lanes=2, tensor_buffer_words=64)
    write_component(build_unit(unit, params), tmp_path, "ecp5")
    synth_yosys(tmp_path, "ecp5")
    netlist = _netlist(tmp_path)
    first, second = twins
    assert _bits(netlist, first) != _bits(netlist, second), f"{first} and {second} merged"


@pytest.mark.synth
def test_block_ram_read_enable_is_apart_from_the_replay(tmp_path):
    """In the datapath the RAMs' read enable (CEB/OCEB) is a net of its own: the replay's flags
    and counters advance on another, so neither has to be placed beside the other."""
    from niti_hw.rtl.synth import write_component
    from niti_hw.rtl.verilog import build_unit

    params = DEFAULT.replace(rows=2, cols=2, lanes=2, lfsr_lanes=2, tensor_buffer_words=4096)
    write_component(build_unit("datapath", params), tmp_path, "ecp5")
    synth_yosys(tmp_path, "ecp5")
    netlist = _netlist(tmp_path)
    cells = netlist["cells"].values()
    enables = {cell["connections"][pin][0] for cell in cells if cell["type"] == "DP16KD"
               for pin in ("CEB", "OCEB")}
    assert len(enables) == 1, f"the RAMs read on {len(enables)} enable nets"
    replay = {bit for name in ("rd_valid0", "rd_valid1", "rd_last1")
              for bit in _bits(netlist, f"unit.{name}")}
    readers = [cell["type"] for cell in cells if cell["type"] == "TRELLIS_FF"
               and cell["connections"]["Q"][0] in replay
               and enables & {bit for bits in cell["connections"].values() for bit in bits}]
    assert not readers, f"{len(readers)} replay flip-flops on the RAMs' read enable net"


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
def test_scratchpad_reads_through_block_ram_output_registers(tmp_path):
    """On ECP5 each scratchpad bank is four byte-wide DP16KDs whose own output register (OUTREG)
    is the read's second stage: address, enables and data wired bit for bit, no fabric flip-flop
    and no logic between a RAM and `rd_data`."""
    from amaranth.back import verilog

    from niti_hw.rtl.scratchpad import BYTES, Scratchpad
    from niti_hw.rtl.synth import SynthTarget

    params = DEFAULT.replace(rows=2, cols=2, lanes=2, lfsr_lanes=2, tensor_buffer_words=4096)
    # unwrapped, so its ports keep their names through synthesis
    (tmp_path / "design_ecp5.v").write_text(
        verilog.convert(Scratchpad(params), name="wrap", platform=SynthTarget("ecp5")))
    cells = synth_yosys(tmp_path, "ecp5")
    assert cells["DP16KD"] == BYTES * params.cols
    netlist = _netlist(tmp_path)
    rd_data, rd_beat = _bits(netlist, "rd_data"), _bits(netlist, "rd_beat")
    (rd_en,) = _bits(netlist, "rd_en")
    for bank in range(params.cols):
        for byte in range(BYTES):
            (ram,) = [c for name, c in netlist["cells"].items()
                      if c["type"] == "DP16KD" and f"bank{bank}_byte{byte}" in name]
            pins = {port: bits[0] for port, bits in ram["connections"].items()}
            where = f"bank{bank}_byte{byte}"
            assert ram["parameters"]["REGMODE_B"] == "OUTREG", f"{where} reads without OUTREG"
            assert pins["CEB"] == pins["OCEB"] == rd_en, f"{where}: read stages not on rd_en"
            first = 32 * bank + 8 * byte
            assert [pins[f"DOB{n}"] for n in range(8)] == rd_data[first:first + 8], \
                f"{where}: DOB0..7 are not rd_data bits {first}..{first + 7}"
            word_address = [pins[f"ADB{n}"] for n in range(3, 14)]
            assert word_address == rd_beat[:11], f"{where}: AD13..AD3 are not the read beat"
