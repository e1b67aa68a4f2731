"""`niti-hw` command line: one subcommand per module in `niti_hw.commands`.

One guard covers every command: an expected error (bad value, bad path, damaged file, missing
extra) prints one line `niti-hw COMMAND: error: ...` and exits with status 2, never a traceback;
anything else is a bug, reported in one line that says where to report it.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from niti_hw import __version__
from niti_hw.commands import EXPECTED_ERRORS, UsageError
from niti_hw.extras import MissingExtra, extra_of

# Each module defines `register(subparsers)`; its parser sets `func(args) -> int`. A module that
# is absent from this build (a command added by an optional part) is skipped; one that needs a
# missing extra at import is listed, and running it says which extra to install.
COMMAND_MODULES = (
    "niti_hw.commands.train",
    "niti_hw.commands.evaluate",
    "niti_hw.commands.estimate",
    "niti_hw.commands.compile",
    "niti_hw.commands.generate",
    "niti_hw.commands.regmap",
    "niti_hw.commands.synth",
    "niti_hw.commands.bench",
    "niti_hw.commands.explore",
)

DEBUG_VARIABLE = "NITI_HW_DEBUG"
"""Set to 1 to see the traceback of an unexpected error."""


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (the guard prints it), not usage text plus a line."""

    def error(self, message: str):
        raise UsageError(f"{message} (see {self.prog} --help)", prog=self.prog)


def build_parser(only: str | None = None) -> Parser:
    """The parser of every command, or, with `only`, of that one command alone: each command
    module imports what it needs (pandas, the training stack), so a run imports only its own."""
    parser = Parser(
        prog="niti-hw",
        description="NITI integer-only training, RTL generation and FPGA synthesis.",
        epilog="Parsed MNIST is cached in $NITI_HW_CACHE (default ~/.cache/niti-hw); delete "
               f"that folder to clear the cache. {DEBUG_VARIABLE}=1 shows the traceback of an "
               "internal error.")
    parser.add_argument("--version", action="version", version=f"niti-hw {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        if only is not None and name.rsplit(".", 1)[1] != only:
            continue
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as error:
            if error.name == name:
                continue
            package = (error.name or "").split(".")[0]
            if extra_of(package) is None:
                raise
            _register_unavailable(subparsers, name.rsplit(".", 1)[1], package)
            continue
        module.register(subparsers)
    return parser


def _register_unavailable(subparsers, command: str, package: str) -> None:
    missing = MissingExtra(f"niti-hw {command}", extra_of(package), package)
    parser = subparsers.add_parser(command, help=f"(needs the {missing.extra} extra)",
                                   add_help=False)

    def run(args):
        raise missing

    parser.set_defaults(func=run, any_arguments=True)


def _requested_command(argv: list[str] | None) -> str | None:
    """The command named on the command line, if it is one we have; else None (all commands)."""
    words = sys.argv[1:] if argv is None else argv
    first = next((word for word in words if not word.startswith("-")), None)
    names = {name.rsplit(".", 1)[1] for name in COMMAND_MODULES}
    return first if first in names else None


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__


def main(argv: list[str] | None = None) -> int:
    command = "niti-hw"
    try:
        parser = build_parser(_requested_command(argv))
        args, unknown = parser.parse_known_args(argv)
        command = f"niti-hw {args.command}"
        if unknown and not getattr(args, "any_arguments", False):  # argparse would blame the top-level parser; name the subcommand
            raise UsageError(f"unrecognized arguments: {' '.join(unknown)} "
                             f"(see {command} --help)")
        return int(args.func(args) or 0)
    except UsageError as error:
        print(f"{error.prog or command}: error: {_one_line(error)}", file=sys.stderr)
        return 2
    except EXPECTED_ERRORS as error:
        print(f"{command}: error: {_one_line(error)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{command}: interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # a bug: say so, and where to report it
        if os.environ.get(DEBUG_VARIABLE):
            raise
        print(f"{command}: internal error ({type(error).__name__}: {_one_line(error)}); this is a "
              f"bug in niti-hw {__version__}: please report it on the niti-hw issue tracker with "
              f"the command line and the traceback ({DEBUG_VARIABLE}=1 shows it)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
