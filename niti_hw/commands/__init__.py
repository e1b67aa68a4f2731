"""The `niti-hw` subcommands, one module each, and what they share: the errors the CLI guard
reports in one line, and checks of paths and numbers done before any work starts."""

from __future__ import annotations

import argparse
import os
import re
from pathlib import Path

from niti_hw.extras import MissingExtra


class UsageError(ValueError):
    """A bad command line; `prog` names the (sub)command whose parser refused it."""

    def __init__(self, message: str, prog: str | None = None):
        super().__init__(message)
        self.prog = prog


EXPECTED_ERRORS = (ValueError, OSError, MissingExtra)
"""Errors that mean bad input or environment, not a bug: the CLI prints them in one line."""


def int_at_least(low: int):
    """argparse type: an integer >= low."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer >= {low}; got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"expected an integer >= {low}; got {value}")
        return value
    parse.__name__ = f"integer >= {low}"
    return parse


class Distinct(argparse.Action):
    """argparse action of a list flag (nargs="+"): each value at most once, since a repeat runs
    or prints the same thing twice, which is never what the command line meant."""

    def __call__(self, parser, namespace, values, option_string=None):
        seen = []
        for value in values:
            if value in seen:
                raise argparse.ArgumentError(self, f"{_shown(value)} is given twice; list each "
                                                   "value once")
            seen.append(value)
        setattr(namespace, self.dest, seen)


def _shown(value) -> str:
    """A parsed value as the user typed it (an array size (8, 8) as 8x8)."""
    if isinstance(value, tuple):
        return "x".join(map(str, value))
    return str(value)


def _first_existing(path: Path) -> Path:
    path = path.absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def check_output_dir(path: Path, flag: str = "--out") -> None:
    """A folder we may create or write into: not a file, under a writable folder."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ValueError(f"{flag} {path} is a file; expected a folder (new or existing)")
    existing = _first_existing(path)
    if not existing.is_dir():
        raise ValueError(f"{flag} {path}: {existing} is a file, so no folder can be made there")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ValueError(f"{flag} {path}: {existing} is not writable")


def check_output_file(path: Path, flag: str) -> None:
    """A file we may create or replace: not a folder, in a writable folder."""
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{flag} {path} is a folder; expected a file name")
    check_output_dir(path.parent, f"{flag} {path}: its folder")


def parse_dims(text: str, option: str, names: tuple[str, ...], example: str) -> tuple[int, ...]:
    """'1x28x28' -> (1, 28, 28): positive integers named `names`, or one line saying the form."""
    form = "x".join(names)
    match = re.fullmatch(r"\s*" + r"\s*[xX]\s*".join([r"(\d+)"] * len(names)) + r"\s*", text or "")
    if not match or any(int(v) < 1 for v in match.groups()):
        raise ValueError(f"{option} must be {form} with positive integers, e.g. {example}; "
                         f"got {text!r}")
    return tuple(int(v) for v in match.groups())
