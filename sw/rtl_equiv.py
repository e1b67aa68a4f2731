"""Prove that the RTL of this checkout equals an earlier revision's, unit by unit, with no simulation.

    python sw/rtl_equiv.py datapath --against HEAD~1 [--rows 8 --cols 8 --lanes 8 ...]

Generates UNIT's Verilog from this checkout and from REV's `niti_hw` (taken with `git archive`),
for the same parameters, and compares the top modules with yosys (`niti_hw.rtl.equiv`). A
refactor of the Amaranth source is safe when every $equiv cell is proven: same registers, same
next-state logic, so the same cycles and, up to place and route, the same hardware. Exit status 0
when proven, 1 when not, 2 on bad input.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import tarfile
import tempfile
from io import BytesIO
from pathlib import Path

from niti_hw.commands._params_args import add_params_arguments, params_from_args
from niti_hw.rtl.equiv import prove_equivalent
from niti_hw.rtl.verilog import UNIT_NAMES, generate

REPO = Path(__file__).resolve().parent.parent
GENERATE = ("import json, sys; from niti_hw.params import HardwareParams; "
            "from niti_hw.rtl.verilog import generate; "
            "sys.stdout.write(generate(sys.argv[1], HardwareParams(**json.loads(sys.argv[2]))))")


def verilog_at(revision: str, unit: str, params, folder: Path) -> str:
    """UNIT's Verilog as `revision`'s niti_hw generates it."""
    archive = subprocess.run(["git", "archive", revision, "niti_hw"], cwd=REPO,
                             capture_output=True, check=False)
    if archive.returncode:
        raise ValueError(f"git archive {revision}: {archive.stderr.decode().strip()}")
    with tarfile.open(fileobj=BytesIO(archive.stdout)) as tar:
        tar.extractall(folder, filter="data")
    fields = json.dumps(dataclasses.asdict(params))
    result = subprocess.run([sys.executable, "-c", GENERATE, unit, fields], capture_output=True,
                            text=True, env={**os.environ, "PYTHONPATH": str(folder)})
    if result.returncode:
        raise ValueError(f"{revision} cannot generate {unit}: "
                         f"{result.stderr.strip().splitlines()[-1]}")
    return result.stdout


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("unit", choices=UNIT_NAMES)
    parser.add_argument("--against", required=True, metavar="REV", help="git revision to compare with")
    parser.add_argument("--seq", type=int, default=5, help="cycles of history equiv_simple may use")
    parser.add_argument("--work", type=Path, help="keep yosys's files and log here")
    add_params_arguments(parser)
    args = parser.parse_args(argv)
    try:
        params = params_from_args(args)
        with tempfile.TemporaryDirectory() as tmp:
            work = args.work or Path(tmp) / "work"
            gold = verilog_at(args.against, args.unit, params, Path(tmp) / "gold")
            result = prove_equivalent(gold, generate(args.unit, params), args.unit, work,
                                      seq=args.seq)
    except ValueError as error:
        print(f"rtl_equiv: error: {error}", file=sys.stderr)
        return 2
    verdict = "equivalent" if result.equivalent else "NOT shown equivalent"
    print(f"{args.unit} against {args.against}: {verdict} ({result.proven} $equiv cells proven, "
          f"{result.unproven} unproven)")
    return 0 if result.equivalent else 1


if __name__ == "__main__":
    sys.exit(main())
