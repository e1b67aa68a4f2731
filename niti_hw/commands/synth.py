"""`niti-hw synth`: synthesise each unit (ECP5, iCE40) and place-and-route on ECP5; print the table."""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

from niti_hw.commands import Distinct, check_output_dir, check_output_file, int_at_least
from niti_hw.commands._params_args import add_params_arguments, params_from_args
from niti_hw.extras import import_extra

ARRAY_UNIT = "systolic_array"
DEFAULT_SIZES = [(2, 2), (4, 4), (8, 8)]


def _size(text: str) -> tuple[int, int]:
    try:
        rows, cols = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"array size must look like 8x8; got {text!r}") from None
    if rows < 1 or cols < 1:
        raise argparse.ArgumentTypeError(f"array rows and cols must be >= 1; got {text!r}")
    return rows, cols


def register(subparsers) -> None:
    parser = subparsers.add_parser("synth", help="FPGA area and Fmax table per unit and array size",
                                   description=__doc__)
    parser.add_argument("--work", type=Path, default=Path("build/synth"),
                        help="work folder for the tools (default build/synth)")
    parser.add_argument("--sizes", type=_size, nargs="+", action=Distinct, metavar="RxC",
                        help="array sizes of systolic_array, e.g. 2x2 4x4 8x8 (the default); "
                             "the other units are sized by --lanes")
    parser.add_argument("--no-pnr", action="store_true", help="skip nextpnr (no Fmax column)")
    parser.add_argument("--no-ice40", action="store_true", help="skip synth_ice40")
    parser.add_argument("--csv", type=Path, help="also write the table as CSV")
    parser.add_argument("--jobs", type=int_at_least(1), default=1,
                        help="units built at once (default 1)")
    parser.add_argument("--seeds", type=int_at_least(1), nargs="+", action=Distinct,
                        metavar="SEED",
                        help="nextpnr seeds, one row each; a unit's seeds share one yosys run "
                             "(default 1)")
    parser.add_argument("--units", nargs="+", action=Distinct, metavar="UNIT",
                        help="only these units (systolic_array, bitwidth_detector, "
                             "shift_round_<mode>, loss_gradient, training_core: the top)")
    add_params_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    params = params_from_args(args)
    synth = import_extra("niti_hw.rtl.synth", "niti-hw synth")
    jobs = synth.default_jobs(params, args.sizes or DEFAULT_SIZES)
    valid = list(dict.fromkeys(job.unit for job in jobs))
    unknown = [unit for unit in args.units or () if unit not in valid]
    if unknown:
        raise ValueError(f"unknown unit {unknown[0]!r}; valid units: {', '.join(valid)}")
    if args.units:
        jobs = [job for job in jobs if job.unit in args.units]
    if args.seeds:
        jobs = [replace(job, seed=seed) for job in jobs for seed in args.seeds]
    if args.sizes and ARRAY_UNIT not in {job.unit for job in jobs}:
        raise ValueError(f"--sizes sizes {ARRAY_UNIT} only, which --units leaves out; the other "
                         "units are sized by --lanes (drop --sizes)")
    check_output_dir(args.work, "--work")
    if args.csv:
        check_output_file(args.csv, "--csv")
    table = synth.run_jobs(jobs, args.work.resolve(),
                           ice40=not args.no_ice40, pnr=not args.no_pnr, parallel=args.jobs)
    print(synth.to_markdown(table))
    if args.csv:
        table.to_csv(args.csv, index=False)
    return 0
