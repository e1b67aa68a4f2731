"""`niti-hw synth`: synthesise each unit (ECP5, iCE40) and place-and-route on ECP5; print the table."""

from __future__ import annotations

import argparse
from pathlib import Path

from niti_hw.commands._params_args import add_params_arguments, params_from_args
from niti_hw.rtl.synth import default_jobs, run_jobs, to_markdown


def _size(text: str) -> tuple[int, int]:
    try:
        rows, cols = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"array size must look like 8x8; got {text!r}") from None
    return rows, cols


def register(subparsers) -> None:
    parser = subparsers.add_parser("synth", help="FPGA area and Fmax table per unit and array size",
                                   description=__doc__)
    parser.add_argument("--work", type=Path, default=Path("build/synth"),
                        help="work folder for the tools (default build/synth)")
    parser.add_argument("--sizes", type=_size, nargs="+", default=[(2, 2), (4, 4), (8, 8)],
                        help="array sizes, e.g. 2x2 4x4 8x8 (default)")
    parser.add_argument("--no-pnr", action="store_true", help="skip nextpnr (no Fmax column)")
    parser.add_argument("--no-ice40", action="store_true", help="skip synth_ice40")
    parser.add_argument("--csv", type=Path, help="also write the table as CSV")
    parser.add_argument("--jobs", type=int, default=1, help="units built at once (default 1)")
    parser.add_argument("--units", nargs="+", metavar="UNIT",
                        help="only these units (systolic_array, bitwidth_detector, shift_round_<mode>)")
    add_params_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    params = params_from_args(args)
    jobs = [job for job in default_jobs(params, args.sizes) if not args.units or job.unit in args.units]
    if not jobs:
        raise SystemExit(f"no unit matches --units {' '.join(args.units)}")
    table = run_jobs(jobs, args.work.resolve(),
                     ice40=not args.no_ice40, pnr=not args.no_pnr, parallel=args.jobs)
    print(to_markdown(table))
    if args.csv:
        table.to_csv(args.csv, index=False)
    return 0

