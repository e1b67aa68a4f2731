"""`niti-hw compile`: a model's training step as a sequencer program: a listing to read, the
instruction memory image ($readmemh hex, one 32-bit word a line) or JSON with every tensor's
place, and the words each bank needs against what the memories hold."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from niti_hw.atomic_write import atomic_write
from niti_hw.commands import int_at_least, parse_dims
from niti_hw.models import MODELS
from niti_hw.params import HardwareParams

MEMORY_FIELDS = ("ifmap_sram_kib", "ofmap_sram_kib", "filter_sram_kib", "tensor_buffer_words")


def register(subparsers) -> None:
    parser = subparsers.add_parser("compile", help="compile a training step into a program",
                                   description=__doc__)
    parser.add_argument("--model", choices=list(MODELS), default="small-cnn", metavar="NAME",
                        help=f"one of: {', '.join(MODELS)} (default small-cnn)")
    parser.add_argument("--input", metavar="CxHxW", help="input shape (default: the model's own)")
    parser.add_argument("--batch", type=int_at_least(1), default=4, help="(default 4)")
    parser.add_argument("--classes", type=int_at_least(1), help="(default: the model's)")
    defaults = HardwareParams()
    for name in MEMORY_FIELDS:
        parser.add_argument(f"--{name.replace('_', '-')}", type=int_at_least(1),
                            default=getattr(defaults, name), help=f"(default {getattr(defaults, name)})")
    parser.add_argument("--weight-bits", type=int, default=8, choices=range(8, 25),
                        metavar="8..24", help="stored weight width (default 8; wider weights "
                                              "keep an int8 copy for the GEMMs)")
    parser.add_argument("--fit", action="store_true",
                        help="size the memories for the program instead of refusing one that "
                             "does not fit (simulation of a large model)")
    parser.add_argument("--format", choices=("listing", "hex", "json"), default="listing",
                        help="listing (default), hex ($readmemh image) or json")
    parser.add_argument("--out", type=Path, metavar="PATH", help="write there (whole or not at all)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from niti_hw.program.compiler import compile_step, program_params
    from niti_hw.program.listing import FORMATS

    spec = MODELS[args.model]
    if args.input:
        shape = parse_dims(args.input, "--input", ("C", "H", "W"), "1x16x16")
    else:
        h, w, c = spec.input_shape
        shape = (c, h, w)
    params = HardwareParams(**{name: getattr(args, name) for name in MEMORY_FIELDS})
    program = compile_step(spec, shape, args.batch, params, args.classes, fit=args.fit,
                           weight_bits=args.weight_bits)
    text = FORMATS[args.format](program, program_params(program, params) if args.fit else params)
    if args.out is None:
        sys.stdout.write(text)
        return 0
    with atomic_write(args.out) as tmp:
        tmp.write_text(text)
    print(f"{args.out}: {len(program.instructions)} instructions, "
          f"{len(program.words())} words", file=sys.stderr)
    return 0
