"""Benchmark: `niti-hw explore` on 10,000 LeNet-5 estimate points (target: under 2 minutes on the
2-core LocalCluster; Dask's overhead per point under 10 % of the point's own time).

The same points run three ways: a plain loop in this process (the points' own time), then whole
studies on a LocalCluster of 1 and of 2 workers, each into a fresh study folder. Two overheads:
the 1-worker study's time running tasks against the plain loop's (includes whatever else the
machine is doing in between), and against the points' own time measured inside the worker during
the same run (Dask's scheduling, transfer and the store alone). The scaling is 1 worker's task
time over 2 workers'. Results go to sw/results/bench_explore.csv. Usage:
    python sw/bench_explore.py [--space sw/spaces/bench_lenet5.toml] [--workers 1 2]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import pandas as pd

from niti_hw.explore.plan import make_plan
from niti_hw.explore.space import load_space
from niti_hw.explore.study import run_study
from niti_hw.explore.tasks import run_estimates

HERE = Path(__file__).resolve().parent


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--space", type=Path, default=HERE / "spaces" / "bench_lenet5.toml")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--csv", type=Path, default=HERE / "results" / "bench_explore.csv")
    args = parser.parse_args(argv)
    space = load_space(args.space)
    items = list(make_plan(space).estimates.items())
    start = time.perf_counter()
    rows = run_estimates(items)
    loop = time.perf_counter() - start
    assert all(row["status"] == "ok" for row in rows), "a benchmark point failed"
    print(f"plain loop: {len(items)} points in {loop:.1f} s ({1e3 * loop / len(items):.2f} ms "
          "per point)", flush=True)
    table = [{"run": "plain loop", "workers": 0, "points": len(items), "task_s": loop,
              "study_s": loop, "worker_own_s": loop, "ms_per_point": 1e3 * loop / len(items)}]
    for workers in args.workers:
        with tempfile.TemporaryDirectory() as folder:
            start = time.perf_counter()
            outcome = run_study(space, Path(folder) / "study", workers=workers, dashboard=None,
                                log=lambda text: None)
            study = time.perf_counter() - start
            stored = (Path(folder) / "study" / "results" / "estimate").glob("*.parquet")
            own = sum(pd.read_parquet(path, columns=["seconds"])["seconds"].sum()
                      for path in stored)
        assert outcome.ok == len(items)
        table.append({"run": "explore", "workers": workers, "points": len(items),
                      "task_s": outcome.task_seconds, "study_s": study, "worker_own_s": own,
                      "ms_per_point": 1e3 * outcome.task_seconds / len(items)})
        print(f"{workers} worker(s): tasks {outcome.task_seconds:.1f} s (points' own time in the "
              f"workers {own:.1f} s), whole study (cluster start, store, join, report) "
              f"{study:.1f} s", flush=True)
    frame = pd.DataFrame(table)
    one = frame[frame.workers == 1]
    if len(one):
        overhead = (one.task_s.iloc[0] - loop) / loop
        own = (one.task_s.iloc[0] - one.worker_own_s.iloc[0]) / one.worker_own_s.iloc[0]
        print(f"Dask overhead per point, 1 worker: {100 * overhead:.1f} % against the plain loop, "
              f"{100 * own:.1f} % against the points' own time in the worker")
        frame["overhead_vs_own_pct"] = 100 * (frame.task_s * frame.workers.clip(lower=1)
                                              - frame.worker_own_s) / frame.worker_own_s
        frame["overhead_vs_loop_pct"] = 100 * (frame.task_s * frame.workers.clip(lower=1) - loop) \
            / loop
    two = frame[frame.workers == 2]
    if len(one) and len(two):
        print(f"2 workers against 1: {one.task_s.iloc[0] / two.task_s.iloc[0]:.2f}x on "
              f"{os.cpu_count()} cores")
    frame.round(3).to_csv(args.csv, index=False)
    print(f"wrote {args.csv}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
