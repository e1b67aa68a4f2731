"""Benchmark: the golden GEMM engines (float64 BLAS; torch: _int_mm or its float32 carrier)
against numpy int32 and PyTorch.

Prints one table of times and ratios, all measured in this process. Usage:
    OMP_NUM_THREADS=1 python sw/bench_golden.py [--sizes 128 256 512] [--repeat 5] [--threads 1]
"""

from __future__ import annotations

import argparse
import time
from contextlib import contextmanager
from unittest import mock

import numpy as np
import pandas as pd

import niti_hw.golden.gemm as gemm
from niti_hw.golden import Conv2d, IntegerWeights, QTensor, RoundingPolicy, int8_matmul

try:
    import torch
except ImportError:  # torch is an optional extra
    torch = None


def best_time(function, repeat: int) -> float:
    function()  # warm up caches and lazy initialisation
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def numpy_int32_matmul(a, b):
    """The peer: numpy's integer matmul (exact, but no BLAS)."""
    return np.matmul(a.astype(np.int32), b.astype(np.int32))


@contextmanager
def gemm_engine(policy, name: str):
    """Run the golden layers on another GEMM engine (the numpy int32 peer included)."""
    engines = {**gemm.ENGINES, "numpy-int32": numpy_int32_matmul}
    with mock.patch.dict(gemm.ENGINES, engines), mock.patch.object(policy, "engine", name):
        yield


def gemm_rows(sizes, repeat, rng):
    rows = []
    for n in sizes:
        a = rng.integers(-127, 128, (n, n), dtype=np.int8)
        b = rng.integers(-127, 128, (n, n), dtype=np.int8)
        ops = 2 * n**3
        timings = {
            "golden int8_matmul (float64 BLAS)": best_time(lambda: int8_matmul(a, b, "blas"), repeat),
            "numpy int32 matmul": best_time(lambda: numpy_int32_matmul(a, b), repeat),
        }
        if torch is not None:
            ta, tb = torch.from_numpy(a), torch.from_numpy(b)
            fa, fb = ta.float(), tb.float()
            timings["torch fp32 matmul"] = best_time(lambda: fa @ fb, repeat)
            timings["golden int8_matmul (torch engine)"] = best_time(
                lambda: int8_matmul(a, b, "torch"), repeat)
        for engine, seconds in timings.items():
            rows.append({"workload": f"GEMM {n}x{n}x{n}", "engine": engine, "seconds": seconds,
                         "GOP/s": ops / seconds / 1e9})
    return rows


def conv_rows(repeat, rng, batch=32, size=16, cin=32, cout=64):
    """One 3x3 conv layer: forward + backward (error and gradient) + update."""
    x = QTensor(rng.integers(-127, 128, (batch, size, size, cin), dtype=np.int8), -7)
    weights = IntegerWeights.xavier((3, 3, cin, cout), 9 * cin, 9 * cout, rng)
    e = QTensor(rng.integers(-20, 21, (batch, size, size, cout), dtype=np.int8), -7)
    policy = RoundingPolicy()

    def golden_step():
        layer = Conv2d(IntegerWeights(weights.values, weights.exp), padding=1)
        layer.forward(x, policy)
        layer.backward(e, policy)
        layer.update(2, policy)

    ops = 3 * 2 * batch * size * size * 9 * cin * cout
    name = f"conv3x3 {batch}x{size}x{size}x{cin}->{cout} fwd+bwd+update"
    def with_engine(name):
        def step():
            with gemm_engine(policy, name):
                golden_step()
        return step

    timings = {"golden (float64 BLAS GEMM)": best_time(with_engine("blas"), repeat),
               "golden with numpy int32 GEMM": best_time(with_engine("numpy-int32"), repeat)}
    if torch is not None:
        conv = torch.nn.Conv2d(cin, cout, 3, padding=1, bias=False)
        optimiser = torch.optim.SGD(conv.parameters(), lr=0.01, momentum=0.9)
        xt = torch.from_numpy(x.values.astype(np.float32)).permute(0, 3, 1, 2).contiguous()
        xt.requires_grad_(True)
        et = torch.from_numpy(e.values.astype(np.float32)).permute(0, 3, 1, 2).contiguous()

        def torch_step():
            optimiser.zero_grad()
            conv(xt).backward(et)
            optimiser.step()

        timings["golden (torch engine GEMM)"] = best_time(with_engine("torch"), repeat)
        timings["torch fp32 (autograd + SGD)"] = best_time(torch_step, repeat)
    return [{"workload": name, "engine": engine, "seconds": seconds, "GOP/s": ops / seconds / 1e9}
            for engine, seconds in timings.items()]


def main(argv=None) -> pd.DataFrame:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[128, 256, 512])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2, help="torch threads (the GEMM pools)")
    parser.add_argument("--csv", help="also write the table to this CSV file")
    args = parser.parse_args(argv)
    if torch is not None:
        torch.set_num_threads(args.threads)  # set deliberately: interleaved pools fight
    rng = np.random.default_rng(0)
    table = pd.DataFrame(gemm_rows(args.sizes, args.repeat, rng) + conv_rows(args.repeat, rng))
    reference = table[table.engine.str.startswith("golden")].groupby("workload").seconds.first()
    table["x vs golden"] = table.workload.map(reference) / table.seconds
    with pd.option_context("display.width", 140, "display.max_colwidth", 60):
        print(table.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    if args.csv:
        table.to_csv(args.csv, index=False)
    return table


if __name__ == "__main__":
    main()
