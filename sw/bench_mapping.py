"""Benchmark and study: the RTL's schedule against the best mapping, with the bounds, per dataflow.

For VGG16 (CIFAR-10 shapes, batch 128, 16x16) and LeNet-5 (MNIST, batch 64, 8x8), default
memories: whole-step utilisation, DRAM traffic against the compulsory and capacity bounds, energy,
how many GEMM rows the RTL datapath takes as a tile walk and how many it runs (the walk, and the
int32 result in its tensor buffer), the best mapping among the walks (`best-rtl`), with and without fusion (`--fuse`) and tensors
kept on chip between ops (`--keep-on-chip`, "kept"); the search's time on one core (best of
--repeat, against the RTL schedule's own estimate in the same process). Writes
sw/results/mapping.csv and prints it. The search runs numpy's element-wise kernels, which use one
core. Usage: python sw/bench_mapping.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pandas as pd

from niti_hw.params import DATAFLOWS, DEFAULT
from niti_hw.perf.cost import estimate
from niti_hw.perf.lowering import lower
from niti_hw.perf.mapping import Mapping, tile_walk

RESULTS = Path(__file__).resolve().parent / "results"
WORKLOADS = {"vgg16": ((3, 32, 32), 128, 16), "lenet5": ((1, 28, 28), 64, 8)}
VARIANTS = (("rtl", False, False), ("best", False, False), ("best-rtl", False, False),
            ("best", True, False), ("best", False, True), ("best", True, True))
"""(mapping, fused, keep_on_chip) of each row."""


def timed(function, repeat: int):
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - start)
    return min(times), result


def walks(gemm, params) -> int:
    """GEMM rows whose mapping the datapath runs as a tile walk, whether or not they fit its
    tensor buffer."""
    return sum(tile_walk(Mapping.from_label(row.mapping), row.m, row.n, row.k, params) is not None
               for row in gemm.itertuples())


def summary(model, dataflow, mapping, table, seconds, params) -> dict:
    gemm = table[table["op"] == "gemm"]
    dram = table["dram_read_bytes"].sum() + table["dram_write_bytes"].sum()
    compulsory = table["compulsory_bytes"].sum()
    capacity = table["capacity_bound_bytes"].sum()
    pes = WORKLOADS[model][2] ** 2
    return {
        "model": model, "dataflow": dataflow, "mapping": mapping,
        "utilisation": table["macs"].sum() / (pes * table["cycles"].sum()),
        "cycles": int(table["cycles"].sum()), "stall_cycles": int(table["stall_cycles"].sum()),
        "compute_bound_cycles": int(table["compute_bound_cycles"].sum()),
        "dram_gb": dram / 1e9, "compulsory_gb": compulsory / 1e9, "capacity_bound_gb": capacity / 1e9,
        "dram_over_bound": dram / max(compulsory, capacity),
        "energy_mj": table["energy_pj"].sum() / 1e9,
        "gemm_rows": len(gemm), "gemm_rows_walked": walks(gemm, params),
        "gemm_rows_on_rtl": int((gemm["runs_on"] == "rtl").sum()),
        "estimate_s": seconds,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    rows = []
    for model, (shape, batch, size) in WORKLOADS.items():
        ops = lower(model, shape, batch)
        for dataflow in DATAFLOWS:
            params = DEFAULT.replace(rows=size, cols=size, lanes=size, dataflow=dataflow)
            for mapping, fused, kept in VARIANTS:
                seconds, table = timed(lambda: estimate(
                    ops, params, mapping=mapping, fused=fused, keep_on_chip=kept), args.repeat)
                label = mapping + (" fused" if fused else "") + (" kept" if kept else "")
                rows.append(summary(model, dataflow, label, table, seconds, params))
                print(f"{model} {dataflow} {label}: {rows[-1]['utilisation']:.3f} "
                      f"utilisation, {seconds:.2f} s", flush=True)
    frame = pd.DataFrame(rows)
    RESULTS.mkdir(exist_ok=True)
    frame.to_csv(RESULTS / "mapping.csv", index=False, float_format="%.4g")
    print(frame.to_string(index=False, float_format=lambda v: f"{v:.3g}"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
