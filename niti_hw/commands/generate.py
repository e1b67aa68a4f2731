"""`niti-hw generate`: write the Verilog of every RTL unit and the top for given parameters."""

from __future__ import annotations

import argparse
from pathlib import Path

from niti_hw.commands import check_output_dir
from niti_hw.commands._params_args import add_params_arguments, params_from_args
from niti_hw.extras import import_extra


def register(subparsers) -> None:
    parser = subparsers.add_parser("generate", help="write Verilog for each RTL unit and the top",
                                   description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("rtl"), help="output folder (default rtl/)")
    parser.add_argument("--unit", action="append", metavar="UNIT",
                        help="only this unit (repeatable; default all): systolic_array, "
                             "bitwidth_detector, shift_round_<mode>, datapath, ...; core_top "
                             "(lanes >= 4) only when named")
    add_params_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    params = params_from_args(args)
    verilog = import_extra("niti_hw.rtl.verilog", "niti-hw generate")
    valid = verilog.UNIT_NAMES + verilog.TOP_UNITS
    unknown = [unit for unit in args.unit or () if unit not in valid]
    if unknown:
        raise ValueError(f"unknown unit {unknown[0]!r}; valid units: {', '.join(valid)}")
    check_output_dir(args.out)
    for path in verilog.write_all(params, args.out, tuple(args.unit or verilog.UNIT_NAMES)):
        print(path)
    return 0
