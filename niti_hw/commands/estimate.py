"""`niti-hw estimate`: cycles, memory traffic and energy of one NITI training step, from shapes alone.

A model, input shape and batch (or one GEMM, C[M x N] = A[M x K] @ B[K x N]) are lowered to the
operations of a training step and costed on the array `HardwareParams` describes; the same step on
an fp32 datapath of the same array gives the int8/fp32 ratios. `--timing scalesim` gives SCALE-Sim
3.0.0's cycle and SRAM/DRAM access counts instead (GEMMs only, results through the ofmap SRAM to
DRAM, no tensor buffer, no stalls).
"""

from __future__ import annotations

import argparse
import json
import math
import numbers
import sys
from pathlib import Path

from niti_hw.atomic_write import atomic_write
from niti_hw.commands import parse_dims
from niti_hw.models import MODELS
from niti_hw.params import DEFAULT, HardwareParams

DATAFLOW_NAMES = {"os": "output_stationary", "ws": "weight_stationary", "is": "input_stationary"}
FORMATS = ("table", "csv", "json")
TRAIN_SAMPLES = {"lenet5": 60000, "alexnet": 1281167}  # MNIST, ImageNet; others CIFAR-10
CIFAR_SAMPLES = 50000
# Options that change the modelled hardware beyond what SCALE-Sim's compute cycles depend on.
NOT_IN_SCALESIM = ("lanes", "acc_bits", "tensor_buffer_words", "dram_bytes_per_cycle", "energy",
                   "weight_bits", "clock_mhz", "plot", "fuse", "keep_on_chip")
MEMORY_HELP = {
    "tensor_buffer_words": "int32 entries of the buffer holding a layer's output until B is known",
    "ifmap_sram_kib": "input-operand SRAM",
    "filter_sram_kib": "weight-operand SRAM",
    "ofmap_sram_kib": "partial-sum SRAM (WS, IS)",
    "dram_bytes_per_cycle": "off-chip bandwidth at the array clock",
}
MEMORY_FIELDS = ("tensor_buffer_words", "ifmap_sram_kib", "filter_sram_kib", "ofmap_sram_kib",
                 "dram_bytes_per_cycle", "clock_mhz", "acc_bits")


def register(subparsers) -> None:
    p = subparsers.add_parser("estimate", help="cycles, bytes and energy of a training step",
                              description=__doc__)
    what = p.add_mutually_exclusive_group()
    what.add_argument("--model", choices=list(MODELS), metavar="NAME",
                      help=f"one of: {', '.join(MODELS)} (default lenet5)")
    what.add_argument("--gemm", metavar="MxNxK", help="one GEMM C[MxN] = A[MxK] @ B[KxN] instead")
    p.add_argument("--input", metavar="CxHxW", help="input shape (default: the model's own)")
    p.add_argument("--batch", type=int, default=64, help="batch size (default 64)")
    p.add_argument("--classes", type=int, help="outputs of the last layer (default: the model's)")
    p.add_argument("--array", metavar="ROWSxCOLS", default=DEFAULT.name,
                   help=f"systolic array (default {DEFAULT.name})")
    p.add_argument("--dataflow", choices=list(DATAFLOW_NAMES), default="os")
    p.add_argument("--timing", choices=["rtl", "scalesim"], default="rtl",
                   help="rtl: the RTL's timing and the memory model (default); scalesim: "
                        "SCALE-Sim 3.0.0's cycle and memory access counts, folds on their own")
    p.add_argument("--lanes", type=int, help="values per beat of the post-processing units "
                                             "(default: gcd(cols, 16))")
    p.add_argument("--acc-bits", type=int, help=f"accumulator bits (default {DEFAULT.acc_bits})")
    p.add_argument("--weight-bits", type=int, help="stored weight bits, 8..24 (default 8)")
    for name, what in MEMORY_HELP.items():
        default = getattr(DEFAULT, name)
        p.add_argument(f"--{name.replace('_', '-')}", type=type(default),
                       help=f"{what} (default {default})")
    p.add_argument("--clock-mhz", type=float,
                   help="array clock (default: the Fmax in rtl/synth_report.csv)")
    p.add_argument("--energy", type=Path, metavar="FILE.toml", help="energy per action (pJ)")
    p.add_argument("--energy-defaults", action="store_true",
                   help="print the default energy table as TOML and exit")
    p.add_argument("--train-samples", type=int,
                   help="samples per epoch (default: the model's dataset, e.g. 50000 for CIFAR-10)")
    p.add_argument("--mapping", choices=["rtl", "best", "best-rtl"], default="rtl",
                   help="rtl: every GEMM on the RTL's schedule (default); best: search each GEMM's "
                        "loop order and block sizes for the least --objective; best-rtl: the same "
                        "among the mappings the RTL datapath runs (tile walks, no K split)")
    p.add_argument("--objective", choices=["cycles", "energy", "edp"], default="cycles",
                   help="what --mapping best minimises per GEMM (default cycles)")
    p.add_argument("--fuse", action="store_true", default=None,
                   help="fold ReLU and max-pooling into the rounding replay (and ReLU backward into "
                        "the pass before it), as a datapath could; analytical rows")
    p.add_argument("--keep-on-chip", action="store_true", default=None,
                   help="leave a tensor on chip for the next op when it fits the SRAM half that "
                        "op reads it from, instead of through DRAM (after --fuse); analytical")
    p.add_argument("--plot", type=Path, metavar="FILE.png",
                   help="also draw the roofline of the array with every GEMM as a point, "
                        "for the rtl and best mappings")
    p.add_argument("--by", choices=["phase", "layer", "op"], default="phase",
                   help="grouping of the totals (default phase)")
    p.add_argument("--format", choices=FORMATS, default="table")
    p.add_argument("--out", type=Path, help="write to this file instead of standard output")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from niti_hw.perf.energy import default_toml, load_energy

    _check_out(args.out)
    if args.energy_defaults:
        return _emit(default_toml(), args.out)
    _check_scalesim_options(args)
    params = _params(args)
    energy = load_energy(args.energy) if args.energy else None
    text = _report(args, params, energy)
    return _emit(text, args.out)


def _check_scalesim_options(args) -> None:
    if args.timing != "scalesim":
        return
    if args.mapping != "rtl":
        raise ValueError("--timing scalesim costs SCALE-Sim's own schedule; --mapping best needs "
                         "--timing rtl")
    given = [name for name in NOT_IN_SCALESIM if getattr(args, name) is not None]
    if given:
        flags = ", ".join(f"--{name.replace('_', '-')}" for name in given)
        raise ValueError(f"--timing scalesim models SCALE-Sim's cycles and accesses only; it has "
                         f"no {flags} "
                         "(drop them, or use --timing rtl)")


def _params(args) -> HardwareParams:
    rows, cols = parse_dims(args.array, "--array", ("ROWS", "COLS"), "16x16")
    lanes = args.lanes if args.lanes is not None else math.gcd(cols, DEFAULT.lfsr_lanes)
    changes = {name: getattr(args, name) for name in MEMORY_FIELDS if getattr(args, name) is not None}
    try:
        return DEFAULT.replace(rows=rows, cols=cols, lanes=lanes,
                               dataflow=DATAFLOW_NAMES[args.dataflow], **changes)
    except ValueError as error:
        if str(error).startswith(("rows ", "cols ")):
            raise ValueError(f"--array {args.array}: {error}") from None
        raise


def _ops(args):
    from niti_hw.perf.lowering import gemm_op, lower

    weight_bits = args.weight_bits or 8
    if args.gemm:
        m, n, k = parse_dims(args.gemm, "--gemm", ("M", "N", "K"), "64x64x64")
        return gemm_op(m, n, k), "gemm", 1
    name = args.model or "lenet5"
    spec = MODELS[name]
    if args.input:
        shape = parse_dims(args.input, "--input", ("C", "H", "W"), "3x32x32")
    else:
        h, w, c = spec.input_shape
        shape = (c, h, w)
    if args.batch < 1:
        raise ValueError(f"--batch must be a positive integer; got {args.batch}")
    if args.classes is not None and args.classes < 1:
        raise ValueError(f"--classes must be a positive integer; got {args.classes}")
    samples = args.train_samples or TRAIN_SAMPLES.get(name, CIFAR_SAMPLES)
    if samples < 1:
        raise ValueError(f"--train-samples must be a positive integer; got {samples}")
    ops = lower(spec, shape, args.batch, classes=args.classes, weight_bits=weight_bits)
    return ops, f"{name} {'x'.join(map(str, shape))} batch {args.batch}", \
        math.ceil(samples / args.batch)


def _report(args, params: HardwareParams, energy) -> str:
    from niti_hw.perf.clock import clock_mhz
    from niti_hw.perf.cost import estimate, totals
    from niti_hw.perf.lowering import check_reductions

    ops, workload, steps = _ops(args)
    # SPEC's int32 bound refuses; a narrower --acc-bits saturates instead (the datapath model
    # trains with it), so it is costed.
    spec = params.replace(acc_bits=32)
    if args.gemm:
        check_reductions(ops, spec, f"--gemm {args.gemm}")
    else:
        check_reductions(ops, spec, workload, batch=args.batch)
    weight_bits = args.weight_bits or 8
    mhz, clock_source = clock_mhz(params)
    table = estimate(ops, params, energy, timing_model=args.timing, weight_bits=weight_bits,
                     mapping=args.mapping, objective=args.objective, fused=bool(args.fuse),
                     keep_on_chip=bool(args.keep_on_chip))
    if args.plot:
        _plot(args, ops, params, energy, weight_bits, table, workload)
    summary = totals(table, params, mhz, by=args.by, steps_per_epoch=steps if not args.gemm else None)
    fp32 = None
    if args.timing == "rtl":
        fp32_table = estimate(ops, params, energy, datapath="fp32", weight_bits=weight_bits,
                              mapping=args.mapping, objective=args.objective, fused=bool(args.fuse),
                              keep_on_chip=bool(args.keep_on_chip))
        fp32 = totals(fp32_table, params, mhz, by=None).loc["step"]
    step = summary.loc["step"]
    header = {"workload": workload, "array": params.name, "dataflow": params.dataflow,
              "timing": args.timing, "mapping": args.mapping, "objective": args.objective,
              "fused": bool(args.fuse), "keep_on_chip": bool(args.keep_on_chip),
              "clock_mhz": mhz, "clock_source": clock_source,
              "steps_per_epoch": steps, "params": json.loads(params.to_json())}
    if args.timing == "scalesim":
        table = table[["layer", "phase", "op", "m", "n", "k", "macs", "cycles", "utilisation",
                       "sram_read_bytes", "sram_write_bytes", "dram_read_bytes",
                       "dram_write_bytes"]]
    else:
        table = table.assign(mapping_detail=[
            _mapping_detail(row.mapping, row.m, row.n, row.k, params) for row in table.itertuples()])
    if args.format == "csv":
        return table.to_csv(index=False)
    if args.format == "json":
        document = {**header, "total_cycles": int(step["cycles"]),
                    "rows": json.loads(table.to_json(orient="records")),
                    "totals": json.loads(summary.to_json(orient="index"))}
        if fp32 is not None:
            document["fp32"] = json.loads(fp32.to_json())
            document["int8_over_fp32"] = _ratios(step, fp32)
        return json.dumps(document, indent=1) + "\n"
    return _table_text(header, table, summary, fp32, step, args.timing)


def _mapping_detail(label: str, m: int, n: int, k: int, params: HardwareParams) -> dict | None:
    """'nmk:16x32x576' -> {"order": "nmk", "block_m": 16, ..., "tile_walk": {"band": 0,
    "block": 2}}: the datapath's tile order for the mapping, None where no walk runs it (None for
    a streaming op)."""
    from niti_hw.perf.mapping import Mapping, tile_walk

    if not label:
        return None
    mapping = Mapping.from_label(label)
    walk = tile_walk(mapping, m, n, k, params)
    return {**mapping.as_dict(),
            "tile_walk": None if walk is None else {"band": walk.band, "block": walk.block}}


def _plot(args, ops, params, energy, weight_bits, table, workload) -> None:
    from niti_hw.perf.cost import MAPPINGS, estimate
    from niti_hw.perf.roofline import plot_roofline

    out = Path(args.plot)
    if not out.parent.is_dir():
        raise ValueError(f"--plot {out}: folder {out.parent} does not exist")
    other = "best" if args.mapping == "rtl" else "rtl"
    tables = {args.mapping: table,
              other: estimate(ops, params, energy, weight_bits=weight_bits, mapping=other,
                              objective=args.objective, fused=bool(args.fuse),
                              keep_on_chip=bool(args.keep_on_chip))}
    plot_roofline({name: tables[name] for name in MAPPINGS if name in tables}, params,
                  f"{workload}, {params.name} {params.dataflow}, objective {args.objective}", out)
    print(f"wrote {out}", file=sys.stderr)


def _ratios(step, fp32) -> dict:
    return {"cycles": float(step["cycles"] / fp32["cycles"]),
            "energy": float(step["energy_pj"] / fp32["energy_pj"]),
            "dram_bytes": float((step["dram_read_bytes"] + step["dram_write_bytes"])
                                / (fp32["dram_read_bytes"] + fp32["dram_write_bytes"]))}


def _table_text(header, table, summary, fp32, step, timing_model) -> str:
    import numpy as np
    import pandas as pd

    lines = [f"{header['workload']} on a {header['array']} array, {header['dataflow']}, "
             f"timing {timing_model}, mapping {header['mapping']}"
             + (f" (least {header['objective']})" if header["mapping"] != "rtl" else "")
             + f", clock {header['clock_mhz']:g} MHz ({header['clock_source']})"]
    if timing_model == "rtl":
        lines += ["x_compute: cycles over MACs / PEs; x_traffic: DRAM bytes over the larger of the "
                  "compulsory and capacity bounds; runs_on: rtl where the RTL runs the GEMM's "
                  "mapping (its tile walk, the int32 result in its tensor buffer)"]
    per_layer = table.groupby(["layer", "phase"], sort=False)
    shown = pd.DataFrame({"macs": per_layer["macs"].sum(), "cycles": per_layer["cycles"].sum()})
    if timing_model == "rtl":
        shown["stall"] = per_layer["stall_cycles"].sum()
    shown["util"] = shown["macs"] / (_pes(header) * shown["cycles"])
    shown["sram_MB"] = (per_layer["sram_read_bytes"].sum()
                        + per_layer["sram_write_bytes"].sum()) / 1e6
    shown["dram_MB"] = (per_layer["dram_read_bytes"].sum()
                        + per_layer["dram_write_bytes"].sum()) / 1e6
    if timing_model == "rtl":
        shown["spill_MB"] = per_layer["spill_bytes"].sum() / 1e6
        shown["energy_uJ"] = per_layer["energy_pj"].sum() / 1e6
        shown["x_compute"] = shown["cycles"] / per_layer["compute_bound_cycles"].sum()
        bound = np.maximum(per_layer["compulsory_bytes"].sum(),
                           per_layer["capacity_bound_bytes"].sum())
        shown["x_traffic"] = (shown["dram_MB"] * 1e6 / bound.where(bound > 0)).fillna(1.0)
        gemms = table[table["op"] == "gemm"].set_index(["layer", "phase"])
        shown["mapping"] = gemms["mapping"].reindex(shown.index).fillna("-")
        shown["runs_on"] = gemms["runs_on"].reindex(shown.index).fillna("-")
    lines += ["", _format(shown.reset_index()), ""]
    columns = ["macs", "cycles", "stall_cycles", "utilisation", "time_ms", "dram_read_bytes",
               "dram_write_bytes", "spill_bytes", "energy_uj", "compute_bound_cycles",
               "compulsory_bytes", "capacity_bound_bytes"]
    if timing_model == "scalesim":
        columns = ["macs", "cycles", "utilisation", "time_ms", "dram_read_bytes",
                   "dram_write_bytes"]
    lines += ["Totals", _format(summary[columns].reset_index())]
    if fp32 is not None:
        ratio = _ratios(step, fp32)
        lines += ["", f"fp32 datapath of the same array: {int(fp32['cycles']):,} cycles, "
                      f"{fp32['energy_pj'] / 1e6:,.1f} uJ per step; int8/fp32: cycles "
                      f"{ratio['cycles']:.3f}, energy {ratio['energy']:.3f}, DRAM bytes "
                      f"{ratio['dram_bytes']:.3f}"]
    return "\n".join(lines) + "\n"


def _pes(header) -> int:
    return header["params"]["rows"] * header["params"]["cols"]


def _format(frame) -> str:
    def cell(value):
        if isinstance(value, numbers.Integral):
            return f"{int(value):,}"
        if isinstance(value, numbers.Real):
            return f"{int(value):,}" if float(value).is_integer() else f"{value:,.3f}"
        return str(value)

    return frame.to_string(index=False, formatters={c: cell for c in frame.columns})


def _check_out(out: Path | None) -> None:
    """Before any work: --out names a file in a folder that exists."""
    if out is None:
        return
    if out.is_dir():
        raise ValueError(f"--out {out} is a folder; expected a file name")
    if not out.parent.is_dir():
        raise ValueError(f"--out {out}: folder {out.parent} does not exist")


def _emit(text: str, out: Path | None) -> int:
    """Write everything at once (a whole file, or nothing), or to standard output."""
    if out is None:
        sys.stdout.write(text)
        return 0
    with atomic_write(out, f"--out {out}") as tmp:
        tmp.write_text(text)
    print(f"wrote {out}", file=sys.stderr)
    return 0

