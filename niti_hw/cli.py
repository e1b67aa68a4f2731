"""`niti-hw` command line: one subcommand per module in `niti_hw.commands`."""

from __future__ import annotations

import argparse
import importlib
import sys

# Each module defines `register(subparsers)`; its parser sets `func(args) -> int`.
COMMAND_MODULES = (
    "niti_hw.commands.train",
    "niti_hw.commands.generate",
    "niti_hw.commands.synth",
    "niti_hw.commands.estimate",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="niti-hw",
        description="NITI integer-only training, RTL generation and FPGA synthesis.")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (ValueError, TypeError, FileNotFoundError, RuntimeError) as error:
        print(f"niti-hw {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
