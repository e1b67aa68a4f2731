"""Benchmark: an MNIST LeNet-5 epoch on `--backend sim` against `--backend golden`, in one process.

Both backends train the same network on the same batches, interleaved batch by batch, so a busy
machine slows both alike; each batch is timed on its own. The sim epoch also pays its once-per-
epoch report (perf's costs of each batch shape, the CSVs and the plot); both evaluate the test set.
Target (issue: the datapath model is cheap): sim / golden <= 1.2 at the default hardware.

    python sw/bench_sim_backend.py [--limit-train 60000] [--gemm-engine blas] [--threads 1]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import pandas as pd

from niti_hw.data import load_dataset
from niti_hw.models import get_model
from niti_hw.train import TrainConfig
from niti_hw.train.build import build_network
from niti_hw.train.integer_run import IntegerRun
from niti_hw.train.prepared import batches, epoch_order, prepare
from niti_hw.train.sim_backend import SimBackend

RESULTS = Path(__file__).resolve().parent / "results"


def main(argv=None) -> pd.DataFrame:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit-train", type=int, help="training images (default: all 60000)")
    parser.add_argument("--limit-test", type=int, default=10000)
    parser.add_argument("--gemm-engine", default="blas", choices=["blas", "torch"])
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    args = parser.parse_args(argv)
    try:
        import torch

        torch.set_num_threads(args.threads)
    except ImportError:
        pass
    data = prepare(load_dataset("mnist", limit_train=args.limit_train, limit_test=args.limit_test))
    runs = {}
    for backend, cls in (("golden", IntegerRun), ("sim", SimBackend)):
        config = TrainConfig(backend=backend, gemm_engine=args.gemm_engine)
        runs[backend] = cls(build_network(get_model("lenet5"), data.image_shape, data.classes,
                                          config.seed), data, config)
    seconds = dict.fromkeys(runs, 0.0)
    order = epoch_order(0, 0, len(data.train_labels))
    for step, index in enumerate(batches(order, 64)):
        for name, run in runs.items():
            start = time.perf_counter()
            run.train_batch(index, 0)
            seconds[name] += time.perf_counter() - start
        if step % 100 == 0:
            print(f"step {step}: golden {seconds['golden']:.1f} s, sim {seconds['sim']:.1f} s",
                  flush=True)
    for name, run in runs.items():
        start = time.perf_counter()
        run.evaluate(data.test_images, data.test_labels)
        seconds[name] += time.perf_counter() - start
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        runs["sim"].write_report(Path(out), 0)
        seconds["sim"] += time.perf_counter() - start
    same = all((a.weights.values == b.weights.values).all() for a, b in
               zip(runs["golden"].net.weighted_layers, runs["sim"].net.weighted_layers))
    table = pd.DataFrame([{
        "train_images": len(data.train_labels), "test_images": len(data.test_labels),
        "gemm_engine": args.gemm_engine, "golden_s": round(seconds["golden"], 2),
        "sim_s": round(seconds["sim"], 2), "sim_over_golden": round(seconds["sim"] /
                                                                     seconds["golden"], 3),
        "weights_identical": same}])
    print(table.to_string(index=False))
    table.to_csv(RESULTS / "bench_sim_backend.csv", index=False)
    return table


if __name__ == "__main__":
    main()
