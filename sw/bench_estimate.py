"""Benchmark: `niti-hw estimate` of a VGG16 CIFAR-10 training step at batch 128 (target: under 1 s).

Times the lowering and the cost model in this process (best of --repeat), then the whole command in
fresh processes beside the interpreter start-up and the pandas import it cannot avoid. Usage:
    python sw/bench_estimate.py [--repeat 5] [--array 16x16]
"""

from __future__ import annotations

import argparse
import math
import subprocess
import sys
import timeit
from pathlib import Path

import pandas as pd

from niti_hw.params import DEFAULT
from niti_hw.perf.clock import clock_mhz
from niti_hw.perf.cost import estimate, totals
from niti_hw.perf.lowering import lower

REPO = Path(__file__).resolve().parent.parent
COMMAND = ["estimate", "--model", "vgg16", "--input", "3x32x32", "--batch", "128", "--format",
           "json"]


def best(function, repeat: int) -> float:
    """Fastest of `repeat` single runs, in seconds."""
    return min(timeit.repeat(function, number=1, repeat=repeat))


def process_time(code: list[str], repeat: int) -> float:
    return best(lambda: subprocess.run([sys.executable, *code], cwd=REPO, check=True,
                                       capture_output=True), repeat)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--array", default="16x16")
    parser.add_argument("--in-process-only", action="store_true",
                        help="skip the fresh-process timings (smoke test)")
    args = parser.parse_args(argv)
    rows, cols = (int(v) for v in args.array.split("x"))
    params = DEFAULT.replace(rows=rows, cols=cols, lanes=math.gcd(cols, DEFAULT.lfsr_lanes))

    def step():
        ops = lower("vgg16", (3, 32, 32), 128)
        table = estimate(ops, params)
        fp32 = estimate(ops, params, datapath="fp32")
        mhz, _ = clock_mhz(params)  # what the CLI does
        return totals(table, params, mhz), totals(fp32, params, mhz, by=None)

    rows = [("lower + estimate (int8 and fp32) + totals, in process", best(step, args.repeat))]
    if not args.in_process_only:
        command = COMMAND + ["--array", args.array]
        rows += [
            ("`niti-hw estimate` command, fresh process",
             process_time(["-m", "niti_hw.cli", *command], args.repeat)),
            ("interpreter start-up alone", process_time(["-c", "pass"], args.repeat)),
            ("import pandas alone", process_time(["-c", "import pandas"], args.repeat)),
        ]
    results = pd.DataFrame(rows, columns=["what", "seconds"])
    print(f"VGG16 CIFAR-10 training step, batch 128, {args.array} array "
          f"({len(lower('vgg16', (3, 32, 32), 128))} operations); best of {args.repeat}")
    print(results.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    return results


if __name__ == "__main__":
    main()
