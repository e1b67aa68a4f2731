"""`niti-hw regmap`: print the control register map (Markdown or a C header), or refresh the table
in a README between its marker comments."""

from __future__ import annotations

import argparse
from pathlib import Path

from niti_hw.commands._params_args import add_params_arguments, params_from_args
from niti_hw.register_docs import c_header, markdown_table, readme_with_table
from niti_hw.registers import DEFAULT_PROGRAM_WORDS, core_register_map, register_map

FORMATS = {"markdown": markdown_table, "c": c_header}


def register(subparsers) -> None:
    parser = subparsers.add_parser("regmap", help="print the control register map",
                                   description=__doc__)
    parser.add_argument("--format", choices=sorted(FORMATS), default="markdown",
                        help="markdown table (default) or C header")
    parser.add_argument("--top", choices=("datapath", "core"), default="datapath",
                        help="the tensor datapath's control block (default) or the NITI core's "
                             "top (rtl/core_top.py)")
    parser.add_argument("--readme", type=Path, metavar="PATH",
                        help="rewrite the Markdown table between the register map markers of "
                             "PATH (rtl/README.md) instead of printing")
    add_params_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    params = params_from_args(args)
    regmap = (register_map(params) if args.top == "datapath" else
              core_register_map(params, DEFAULT_PROGRAM_WORDS))
    if args.readme is None:
        print(markdown_table(regmap) if args.format == "markdown" else c_header(regmap, args.top),
              end="")
        return 0
    if args.format != "markdown":
        raise ValueError("--readme takes the Markdown table; drop --format c")
    text = args.readme.read_text()
    updated = readme_with_table(text, regmap, args.top)
    if updated != text:
        args.readme.write_text(updated)
    print(args.readme)
    return 0
