"""Benchmark: `niti-hw estimate --timing scalesim` against SCALE-Sim 3.0.0 itself.

Runs SCALE-Sim (in a Python of its own: `python3 -m venv .venv-scalesim && .venv-scalesim/bin/pip
install scalesim "numpy<2.3"`) on GEMM and CNN topologies for each array and dataflow, and the cost
model in this process on the same layers. Prints both cycle counts side by side, the wall-time
ratio (SCALE-Sim's simulation, without its interpreter start-up, over the model's estimate) and
SCALE-Sim's SRAM and DRAM access counts (DETAILED_ACCESS_REPORT, words of one byte) beside the
model's: `model_*` columns, `--timing scalesim` (equal, but for the conv inputs that overflow the
SRAM: a lower bound, see `niti_hw.perf.scalesim_memory`) and `niti_*` columns, the NITI flow's own
bytes (`--timing rtl`: results int32 in the tensor buffer, operands fetched in the RTL's tile
order). Writes sw/results/scalesim_cycles.csv (per layer), scalesim_speed.csv (per run) and
scalesim_bytes.csv (per layer, six quantities, in bytes), and prints a summary per dataflow and
quantity (layers equal, NITI / SCALE-Sim ratios). The recorded scalesim_bytes.csv covers every
topology of a full run (282 layers, VGG16 included).

    python sw/compare_scalesim.py --scalesim-python .venv-scalesim/bin/python [--quick]
    python sw/compare_scalesim.py --recompute   # model columns of a recorded scalesim_bytes.csv
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import pandas as pd

from niti_hw.params import HardwareParams
from niti_hw.perf.cost import Traffic, estimate, op_traffic
from niti_hw.perf.lowering import ACC, ACT, Op, conv_inputs, gemm_op, lower
from niti_hw.perf.scalesim_memory import QUANTITIES
from niti_hw.perf.timing import SCALESIM_DATAFLOWS

RESULTS = Path(__file__).resolve().parent / "results"
DATAFLOWS = {short: long for long, short in SCALESIM_DATAFLOWS.items()}

CONFIG = """[general]
run_name = {name}

[architecture_presets]
ArrayHeight: {rows}
ArrayWidth: {cols}
IfmapSramSzkB: {sram_kib}
FilterSramSzkB: {sram_kib}
OfmapSramSzkB: {sram_kib}
IfmapOffset: 0
FilterOffset: 10000000
OfmapOffset: 20000000
Dataflow: {dataflow}
Bandwidth: 10
ReadRequestBuffer: 32
WriteRequestBuffer: 32

[layout]
IfmapCustomLayout: False
IfmapSRAMBankBandwidth: 10
IfmapSRAMBankNum: 10
IfmapSRAMBankPort: 2
FilterCustomLayout: False
FilterSRAMBankBandwidth: 10
FilterSRAMBankNum: 10
FilterSRAMBankPort: 2

[sparsity]
SparsitySupport: false
SparseRep: ellpack_block
OptimizedMapping: false
BlockSize: 8
RandomNumberGeneratorSeed: 40

[run_presets]
InterfaceBandwidth: CALC
UseRamulatorTrace: False
"""

# Runs inside SCALE-Sim's interpreter: simulate, then report per layer "Total Cycles"
# (COMPUTE_REPORT.csv), the SRAM and DRAM access counts (DETAILED_ACCESS_REPORT.csv, in words of
# one byte) and the time the simulation took.
RUNNER = """
import csv, json, sys, time, io, contextlib
from scalesim.scale_sim import scalesim
config, topology, layout, out, gemm = sys.argv[1:6]
start = time.perf_counter()
with contextlib.redirect_stdout(io.StringIO()):
    sim = scalesim(save_disk_space=True, verbose=False, config=config, topology=topology,
                   layout=layout, input_type_gemm=gemm == "gemm")
    sim.run_scale(top_path=out)
wall = time.perf_counter() - start
name = open(config).read().split("run_name = ")[1].split()[0]
def report(file):
    with open(f"{out}/{name}/{file}") as handle:
        return list(csv.reader(handle))[1:]
access = [dict(zip(("ifmap_sram_reads", "filter_sram_reads", "ofmap_sram_writes",
                    "ifmap_dram_reads", "filter_dram_reads", "ofmap_dram_writes"),
                   (int(float(row[i])) for i in (3, 6, 9, 12, 15, 18))))
          for row in report("DETAILED_ACCESS_REPORT.csv")]
print(json.dumps({"wall_s": wall, "cycles": [int(row[2]) for row in report("COMPUTE_REPORT.csv")],
                  "access": access}))
"""

VGG_MIN_PES = 1024
SRAM_KIB = 64
SMALL_SRAM_KIB = 1
EDGE_GEMMS = [(1, 1, 1), (10, 7, 5), (33, 17, 70), (64, 64, 64), (100, 3, 257), (7, 129, 16)]


def model_gemms(name: str, chw, batch: int) -> list[Op]:
    """The GEMMs of one training step (forward, error, gradient)."""
    return [op for op in lower(name, chw, batch) if op.is_gemm]


def conv_layers(name: str, chw) -> list[tuple[str, tuple, Op]]:
    """SCALE-Sim conv rows (padding folded into the ifmap size) and the forward GEMM of each."""
    forward = [op for op in model_gemms(name, chw, 1) if op.phase == "forward"]
    rows = []
    for (layer, spec, (h, w, cin)), op in zip(conv_inputs(name, chw), forward):
        assert op.layer == layer
        p = spec.padding
        rows.append((layer, (h + 2 * p, w + 2 * p, spec.kernel, spec.kernel, cin,
                             spec.out_channels, spec.stride), op))
    return rows


def workloads(quick: bool, params: HardwareParams):
    """(workload name, SCALE-Sim input type, topology rows, ops, SRAM KiB) for each run. GEMM
    topologies get plain GEMM ops (SCALE-Sim sees distinct A and B values), conv topologies the
    forward GEMM of the layer (A gathered from the input tensor). The edge GEMMs and LeNet-5's convs
    also run with 1 KiB SRAMs, where operands overflow them. VGG16 runs on arrays of 1024 PEs or
    more only: SCALE-Sim takes minutes per dataflow on smaller ones."""
    gemms = [replace(gemm_op(m, n, k)[0], layer=f"g{m}x{n}x{k}") for m, n, k in EDGE_GEMMS]
    edge = [(op.layer, (op.m, op.n, op.k)) for op in gemms]
    runs = [("edge GEMMs", "gemm", edge, gemms, SRAM_KIB),
            ("edge GEMMs, 1 KiB SRAMs", "gemm", edge, gemms, SMALL_SRAM_KIB)]
    lenet = [replace(gemm_op(op.m, op.n, op.k)[0], layer=op.layer, phase=op.phase)
             for op in model_gemms("lenet5", (1, 28, 28), 1)]
    runs.append(("lenet5 training step, batch 1", "gemm",
                 [(f"{op.layer}-{op.phase}", (op.m, op.n, op.k)) for op in lenet], lenet, SRAM_KIB))
    convs = conv_layers("lenet5", (1, 28, 28))
    for kib, label in ((SRAM_KIB, ""), (SMALL_SRAM_KIB, ", 1 KiB SRAMs")):
        runs.append((f"lenet5 conv layers{label}", "conv", [(n, row) for n, row, _ in convs],
                     [op for _, _, op in convs], kib))
    if not quick and params.rows * params.cols >= VGG_MIN_PES:
        convs = conv_layers("vgg16", (3, 32, 32))
        runs.append(("vgg16 CIFAR conv layers", "conv", [(n, row) for n, row, _ in convs],
                     [op for _, _, op in convs], SRAM_KIB))
    return runs


def write_topology(path: Path, kind: str, rows) -> None:
    if kind == "gemm":
        lines = ["Layer, M, N, K,"] + [f"{name}, {m}, {n}, {k}," for name, (m, n, k) in rows]
    else:
        lines = ["Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, "
                 "Num Filter, Strides,"]
        lines += [f"{name}, " + ", ".join(map(str, values)) + "," for name, values in rows]
    path.write_text("\n".join(lines) + "\n")


def run_scalesim(python: str, folder: Path, params: HardwareParams, dataflow: str, kind: str,
                 rows) -> dict:
    """SCALE-Sim on one topology, its SRAMs all `params.ifmap_sram_kib` KiB."""
    name = f"run_{params.name}_{dataflow}_{kind}_{params.ifmap_sram_kib}k"
    config, topology, layout = folder / f"{name}.cfg", folder / f"{name}.csv", folder / "layout.csv"
    config.write_text(CONFIG.format(name=name, rows=params.rows, cols=params.cols,
                                    dataflow=dataflow, sram_kib=params.ifmap_sram_kib))
    write_topology(topology, kind, rows)
    layout.write_text("Layer name,\n")
    result = subprocess.run([python, "-c", RUNNER, str(config), str(topology), str(layout),
                             str(folder / "out"), kind], capture_output=True, text=True, check=False)
    if result.returncode:
        raise RuntimeError(f"SCALE-Sim failed on {name}:\n{result.stderr[-2000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def model_time(ops, params: HardwareParams, repeat: int = 20) -> tuple[list[int], float]:
    table = estimate(ops, params, timing_model="scalesim")
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        estimate(ops, params, timing_model="scalesim")
        best = min(best, time.perf_counter() - start)
    return [int(c) for c in table["cycles"]], best


def with_srams(params: HardwareParams, kib: int) -> HardwareParams:
    return params.replace(ifmap_sram_kib=kib, filter_sram_kib=kib, ofmap_sram_kib=kib)


def buffer_bytes(t: Traffic) -> dict[str, int]:
    """A cost-model op's bytes as SCALE-Sim's six quantities: operand reads by the array, results
    written on chip (ofmap SRAM and tensor buffer), operand fetches, results drained to DRAM."""
    return {"ifmap_sram_reads": t.sram_read.get("ifmap", 0),
            "filter_sram_reads": t.sram_read.get("filter", 0),
            "ofmap_sram_writes": t.sram_write.get("ofmap", 0) + t.sram_write.get("tensor", 0),
            "ifmap_dram_reads": t.dram_reads.get("ifmap", 0),
            "filter_dram_reads": t.dram_reads.get("filter", 0),
            "ofmap_dram_writes": t.dram_writes.get("ofmap", 0) + t.dram_writes.get("tensor", 0)}


def a_values(kind: str, row, op: Op) -> int:
    """Distinct values SCALE-Sim gathers A from: a conv's input with the padding its topology row
    folds in (the NITI lowering pads on chip and fetches the bare input), a GEMM's M * K."""
    if kind == "conv":
        height, width, _, _, channels, _, _ = row
        return height * width * channels
    return op.m * op.k


def byte_row(params: HardwareParams, workload: str, layer: str, m: int, n: int, k: int,
             a_values: int, theirs: dict[str, int]) -> dict:
    """One layer: SCALE-Sim's counts (words of one byte), the model's `--timing scalesim` bytes and
    the NITI flow's own bytes (timing "rtl": int32 results in the tensor buffer)."""
    op = Op(layer, "forward", "gemm", m, n, k, reads=((ACT, a_values), (ACT, k * n)),
            writes=((ACC, m * n),))
    model = buffer_bytes(op_traffic(op, params, "scalesim"))
    niti = buffer_bytes(op_traffic(op, params, "rtl"))
    return {"array": params.name, "dataflow": SCALESIM_DATAFLOWS[params.dataflow],
            "sram_kib": params.ifmap_sram_kib, "workload": workload, "layer": layer, "m": m, "n": n,
            "k": k, "a_values": a_values,
            **{f"scalesim_{q}": int(theirs[q]) for q in QUANTITIES},
            **{f"model_{q}": model[q] for q in QUANTITIES},
            **{f"niti_{q}": niti[q] for q in QUANTITIES},
            "equal": all(model[q] == theirs[q] for q in QUANTITIES)}


def recompute(recorded: pd.DataFrame) -> pd.DataFrame:
    """The model's columns again from a recorded comparison's SCALE-Sim columns (no SCALE-Sim)."""
    rows = []
    for row in recorded.itertuples():
        rows_, cols = (int(v) for v in row.array.split("x"))
        params = with_srams(HardwareParams(rows=rows_, cols=cols, lanes=1,
                                           dataflow=DATAFLOWS[row.dataflow]), int(row.sram_kib))
        theirs = {q: getattr(row, f"scalesim_{q}") for q in QUANTITIES}
        rows.append(byte_row(params, row.workload, row.layer, int(row.m), int(row.n), int(row.k),
                             int(row.a_values), theirs))
    return pd.DataFrame(rows)


def byte_summary(table: pd.DataFrame) -> pd.DataFrame:
    """Per dataflow and quantity: layers where the model equals SCALE-Sim, and the NITI flow's bytes
    over SCALE-Sim's (min, median, max over layers where SCALE-Sim counts any)."""
    out = []
    for dataflow, quantity in ((d, q) for d in table["dataflow"].unique() for q in QUANTITIES):
        rows = table[table["dataflow"] == dataflow]
        theirs, niti = rows[f"scalesim_{quantity}"], rows[f"niti_{quantity}"]
        ratio = (niti / theirs)[theirs > 0]
        out.append({"dataflow": dataflow, "quantity": quantity, "layers": len(rows),
                    "model_equal": int((rows[f"model_{quantity}"] == theirs).sum()),
                    "niti_equal": int((niti == theirs).sum()), "niti_ratio_min": ratio.min(),
                    "niti_ratio_median": ratio.median(), "niti_ratio_max": ratio.max()})
    return pd.DataFrame(out)


def _write(out: Path, cycles_rows, speed_rows, byte_rows):
    frames = pd.DataFrame(cycles_rows), pd.DataFrame(speed_rows), pd.DataFrame(byte_rows)
    out.mkdir(parents=True, exist_ok=True)
    for frame, name in zip(frames, ("cycles", "speed", "bytes")):
        frame.to_csv(out / f"scalesim_{name}.csv", index=False)
    return frames


def report_bytes(table: pd.DataFrame) -> bool:
    pd.set_option("display.width", 200)
    print(byte_summary(table).to_string(index=False, float_format=lambda v: f"{v:,.3f}"))
    agree = int(table["equal"].sum())
    print(f"\nSRAM and DRAM access counts equal on {agree}/{len(table)} layers (all six quantities)")
    return agree == len(table)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--scalesim-python",
                        help="Python of a venv with `scalesim` 3.0.0 installed")
    parser.add_argument("--arrays", default="8x8,16x16,32x32", help="comma-separated ROWSxCOLS")
    parser.add_argument("--dataflows", default="os,ws,is")
    parser.add_argument("--quick", action="store_true", help="skip the VGG16 topology")
    parser.add_argument("--recompute", action="store_true",
                        help="recompute the model's columns of OUT/scalesim_bytes.csv from its "
                             "recorded SCALE-Sim columns, without running SCALE-Sim")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if args.recompute:
        path = args.out / "scalesim_bytes.csv"
        if not path.exists():
            parser.error(f"--recompute needs a recorded {path}; run with --scalesim-python first")
        table = recompute(pd.read_csv(path))
        table.to_csv(path, index=False)
        return 0 if report_bytes(table) else 1
    if not args.scalesim_python:
        parser.error("--scalesim-python is required (or --recompute)")
    arrays = [tuple(int(v) for v in a.split("x")) for a in args.arrays.split(",")]
    cycles_rows, speed_rows, byte_rows = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for rows, cols in arrays:
            for short in args.dataflows.split(","):
                array = HardwareParams(rows=rows, cols=cols, lanes=1, dataflow=DATAFLOWS[short])
                for workload, kind, topo_rows, ops, kib in workloads(args.quick, array):
                    params = with_srams(array, kib)
                    sim = run_scalesim(args.scalesim_python, Path(tmp), params, short, kind,
                                       topo_rows)
                    ours, ours_s = model_time(ops, params)
                    for (name, row), op, theirs, mine, access in zip(topo_rows, ops, sim["cycles"],
                                                                     ours, sim["access"]):
                        cycles_rows.append({"array": params.name, "dataflow": short,
                                            "workload": workload, "layer": name, "m": op.m,
                                            "n": op.n, "k": op.k, "scalesim_cycles": theirs,
                                            "model_cycles": mine, "equal": theirs == mine})
                        byte_rows.append(byte_row(params, workload, name, op.m, op.n, op.k,
                                                  a_values(kind, row, op), access))
                    speed_rows.append({"array": params.name, "dataflow": short,
                                       "workload": workload, "layers": len(ops),
                                       "scalesim_cycles": sum(sim["cycles"]),
                                       "model_cycles": sum(ours), "scalesim_s": sim["wall_s"],
                                       "model_s": ours_s, "speedup": sim["wall_s"] / ours_s})
                    # partial results survive an interrupt
                    _write(args.out, cycles_rows, speed_rows, byte_rows)
                    last = speed_rows[-1]
                    equal = sum(row["equal"] for row in byte_rows[-len(ops):])
                    print(f"{params.name} {short} {workload}: SCALE-Sim {last['scalesim_cycles']:,} "
                          f"cycles in {last['scalesim_s']:.2f} s, model {last['model_cycles']:,} in "
                          f"{last['model_s'] * 1e3:.2f} ms ({last['speedup']:,.0f}x); access "
                          f"counts equal on {equal}/{len(ops)} layers", flush=True)
    cycles, speed, table = _write(args.out, cycles_rows, speed_rows, byte_rows)
    pd.set_option("display.width", 200)
    print(speed.to_string(index=False, float_format=lambda v: f"{v:,.4g}"))
    agree = int(cycles["equal"].sum())
    print(f"\ncycle counts equal on {agree}/{len(cycles)} layers; speed-up over SCALE-Sim: "
          f"min {speed['speedup'].min():,.0f}x, median {speed['speedup'].median():,.0f}x\n")
    bytes_agree = report_bytes(table)
    return 0 if agree == len(cycles) and bytes_agree else 1


if __name__ == "__main__":
    sys.exit(main())
