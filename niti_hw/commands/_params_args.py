"""Command-line options that build a HardwareParams (shared by `generate` and `synth`)."""

from __future__ import annotations

import argparse
import dataclasses
import re

from niti_hw.params import DEFAULT, HardwareParams

FIELDS = ("rows", "cols", "lanes", "acc_bits", "lfsr_lanes", "lfsr_seed", "round_mode")


def add_params_arguments(parser: argparse.ArgumentParser) -> None:
    for field in dataclasses.fields(HardwareParams):
        if field.name not in FIELDS:
            continue
        default = getattr(DEFAULT, field.name)
        parser.add_argument(f"--{field.name.replace('_', '-')}", type=type(default), default=default,
                            help=f"(default {default})")


def params_from_args(args: argparse.Namespace) -> HardwareParams:
    """The parameters of an RTL command (generate, synth): arrays the RTL is generated for."""
    params = HardwareParams(**{name: getattr(args, name) for name in FIELDS})
    params.check_rtl()
    return params


def parse_array(text: str) -> tuple[int, int]:
    """'16x16' -> (16, 16): rows x cols of the systolic array."""
    match = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", text or "")
    if not match:
        raise ValueError(f"--array must be ROWSxCOLS with positive integers, e.g. 16x16; "
                         f"got {text!r}")
    return int(match.group(1)), int(match.group(2))
