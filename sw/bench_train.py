"""Benchmark: training images/s of NITI int8 (golden model and torch backend) against PyTorch fp32.

All runs train the same architecture on the same batches in one process, one after the other,
with the thread count set before numpy and torch start their pools (on 2-core machines two pools
that interleave can slow a GEMM by orders of magnitude). Several thread counts each get a fresh
process, so every row's ratio compares runs of one process.

    python sw/bench_train.py [--models lenet5 vgg-small-7] [--batches 5] [--threads 1 2]
                             [--modes nearest pseudo stochastic] [--csv f]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from io import StringIO


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["lenet5", "vgg-small-7"])
    parser.add_argument("--batches", type=int, default=5, help="timed batches per run")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--threads", type=int, nargs="+", default=[2],
                        help="thread counts for BLAS and torch, one process each")
    parser.add_argument("--bf16", action="store_true", help="also time the bf16 autocast twin")
    parser.add_argument("--modes", nargs="+", default=["pseudo"],
                        choices=["nearest", "pseudo", "stochastic"], help="NITI rounding modes")
    parser.add_argument("--csv", help="also write the table to this CSV file")
    return parser.parse_args(argv)


def measure(args, threads: int):
    """The table for one thread count, measured in this process."""
    for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[variable] = str(threads)  # before numpy and torch start their pools
    import niti_hw  # noqa: F401  (huge pages for torch's large tensors: before torch starts)
    import pandas as pd
    import torch

    from niti_hw.commands.bench import train_table

    torch.set_num_threads(threads)
    twins = ("fp32", "bf16") if args.bf16 else ("fp32",)
    tables = []
    for mode in args.modes:
        table = train_table(args.models, ["golden", "torch"], torch.device("cpu"),
                            args.batch_size, args.batches, twins, mode)
        table.insert(1, "threads", threads)
        table.insert(2, "mode", mode)
        tables.append(table)
    return pd.concat(tables, ignore_index=True)


def main(argv=None):
    import pandas as pd

    args = parse_args(argv)
    if len(args.threads) == 1:
        table = measure(args, args.threads[0])
    else:  # one fresh process per thread count: pools cannot be resized once started
        parts = []
        for threads in args.threads:
            command = [sys.executable, __file__, "--threads", str(threads), "--csv", "-",
                       "--models", *args.models, "--batches", str(args.batches),
                       "--batch-size", str(args.batch_size), "--modes", *args.modes]
            command += ["--bf16"] if args.bf16 else []
            out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
            parts.append(pd.read_csv(StringIO(out.split("\n\n", 1)[1])))
        table = pd.concat(parts, ignore_index=True)
    print(table.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    if args.csv == "-":
        print("\n" + table.to_csv(index=False), end="")
    elif args.csv:
        table.to_csv(args.csv, index=False)
    return table


if __name__ == "__main__":
    main()
