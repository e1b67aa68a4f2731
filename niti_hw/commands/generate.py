"""`niti-hw generate`: write the Verilog of every RTL unit and the top for given parameters."""

from __future__ import annotations

import argparse
from pathlib import Path

from niti_hw.commands._params_args import add_params_arguments, params_from_args
from niti_hw.rtl.verilog import UNIT_NAMES, write_all


def register(subparsers) -> None:
    parser = subparsers.add_parser("generate", help="write Verilog for each RTL unit and the top",
                                   description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("rtl"), help="output folder (default rtl/)")
    parser.add_argument("--unit", action="append", choices=UNIT_NAMES,
                        help="only this unit (repeatable; default all)")
    add_params_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    params = params_from_args(args)
    for path in write_all(params, args.out, tuple(args.unit or UNIT_NAMES)):
        print(path)
    return 0
