"""Benchmark: training images/s of NITI int8 (golden model) against the PyTorch fp32 twin.

Both runs train the same architecture on the same batches in this one process, one after the
other, with the thread counts set first: on 2-core machines numpy's BLAS pool and torch's pool
fight when they interleave, which can slow a GEMM by orders of magnitude.

    python sw/bench_train.py [--models lenet5 vgg-small-7] [--batches 5] [--threads 2] [--csv f]
"""

from __future__ import annotations

import argparse
import os
import time


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["lenet5", "vgg-small-7"])
    parser.add_argument("--batches", type=int, default=5, help="timed batches per run")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2, help="threads for BLAS and torch")
    parser.add_argument("--csv", help="also write the table to this CSV file")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[variable] = str(args.threads)  # before numpy and torch start their pools
    import numpy as np
    import pandas as pd
    import torch

    from niti_hw.data import Dataset, load_dataset
    from niti_hw.models import get_model
    from niti_hw.train import TrainConfig
    from niti_hw.train.build import build_network
    from niti_hw.train.float_run import FloatRun
    from niti_hw.train.integer_run import IntegerRun
    from niti_hw.train.prepared import prepare

    torch.set_num_threads(args.threads)
    need = args.batch_size * (args.batches + 1)
    rows = []
    for name in args.models:
        spec = get_model(name)
        if spec.input_shape == (28, 28, 1):
            dataset = load_dataset("mnist", limit_train=need, limit_test=1)
        else:  # CIFAR-shaped random images: speed does not depend on the pixels
            rng = np.random.default_rng(0)
            images = rng.integers(0, 256, (need, *spec.input_shape), dtype=np.uint8)
            labels = rng.integers(0, 10, need).astype(np.int64)
            dataset = Dataset(images, labels, images[:1], labels[:1], "random", 10)
        data = prepare(dataset)
        config = TrainConfig(model=name, batch_size=args.batch_size)
        built = build_network(spec, data.image_shape, data.classes, seed=0)
        for run in (IntegerRun(built, data, config), FloatRun(built, data, config)):
            index = [np.arange(i * args.batch_size, (i + 1) * args.batch_size)
                     for i in range(args.batches + 1)]
            run.train_batch(index[0], 0)  # warm-up
            start = time.perf_counter()
            for batch in index[1:]:
                run.train_batch(batch, 0)
            seconds = time.perf_counter() - start
            rows.append({"model": name, "run": run.label, "batches": args.batches,
                         "batch_size": args.batch_size, "seconds": seconds,
                         "images_per_s": args.batches * args.batch_size / seconds})
    table = pd.DataFrame(rows)
    fp32 = table[table.run == "fp32"].set_index("model").images_per_s
    table["int8 / fp32"] = table.images_per_s / table.model.map(fp32)
    print(table.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    if args.csv:
        table.to_csv(args.csv, index=False)
    return table


if __name__ == "__main__":
    main()
