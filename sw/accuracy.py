"""Recorded experiment: NITI int8 against fp32 on LeNet-5, MNIST and Fashion-MNIST, 10 epochs.

Trains each dataset with `--baseline fp32` through the same code path as `niti-hw train`, writes
sw/results/<dataset>/ (metrics.csv, curves.png, config.json), then summarises every recorded
dataset into sw/results/accuracy.csv, the table the README quotes (best and final test accuracy
per run, and the int8 - fp32 gap).

    python sw/accuracy.py [--datasets mnist fashion-mnist] [--epochs 10]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

import pandas as pd

from niti_hw.commands.train import summary
from niti_hw.train import TrainConfig, Trainer

RESULTS = Path(__file__).resolve().parent / "results"


def main(argv=None) -> pd.DataFrame:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=["mnist", "fashion-mnist"])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--model", default="lenet5")
    args = parser.parse_args(argv)
    for dataset in args.datasets:
        with tempfile.TemporaryDirectory() as work:
            config = TrainConfig(model=args.model, dataset=dataset, epochs=args.epochs)
            Trainer(config, work, baseline=True).fit()
            target = RESULTS / dataset
            target.mkdir(parents=True, exist_ok=True)
            for name in ("metrics.csv", "curves.png", "config.json"):
                shutil.copy(Path(work) / name, target / name)
    result = summarise(RESULTS)
    print(result.to_string(index=False))
    return result


def summarise(results: Path) -> pd.DataFrame:
    tables = []
    for metrics in sorted(results.glob("*/metrics.csv")):
        table = summary(pd.read_csv(metrics)).reset_index()
        table.insert(0, "dataset", metrics.parent.name)
        tables.append(table)
    result = pd.concat(tables, ignore_index=True)
    fp32 = result[result.run == "fp32"].set_index("dataset")
    result["best_gap_vs_fp32_pct"] = result.best_test_pct - result.dataset.map(fp32.best_test_pct)
    result.round(3).to_csv(results / "accuracy.csv", index=False)
    return result


if __name__ == "__main__":
    main()
