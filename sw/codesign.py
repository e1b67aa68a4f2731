"""Co-design study of a NITI training accelerator: what each hardware choice costs and what it does
to accuracy. Tables (CSV) and plots (PNG) go to sw/results/codesign/.

    python sw/codesign.py accuracy   # LeNet-5 on MNIST through the datapath model (slow: minutes)
    python sw/codesign.py costs      # cycles, bytes, energy from shapes alone (seconds)
    python sw/codesign.py plots      # the plots, from the CSVs of the two steps above

`accuracy` trains LeNet-5 on an MNIST subset once per hardware variant (accumulator width 16/20/24/32
bits, per-tile and predicted exponents) on the `sim` backend and records the test accuracy after
every epoch, with what the values did (saturated accumulator outputs, values beyond a predicted
exponent). The int32 / whole-tensor variant is bit-identical to the golden model.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import pandas as pd

from niti_hw.data import load_dataset
from niti_hw.models import get_model
from niti_hw.train import TrainConfig
from niti_hw.train.build import build_network
from niti_hw.train.prepared import batches, epoch_order, prepare
from niti_hw.train.sim_backend import SimBackend

RESULTS = Path(__file__).resolve().parent / "results" / "codesign"

VARIANTS = {
    "int32, tensor exponent": {},
    "predicted exponent": {"exponent": "predicted"},
    "per-tile exponent 8x8": {"exponent": "tile"},
    "per-tile exponent 32x32": {"exponent": "tile", "rows": 32, "cols": 32},
    "24-bit accumulator": {"acc_bits": 24},
    "20-bit accumulator": {"acc_bits": 20},
    "16-bit accumulator": {"acc_bits": 16},
}
"""Hardware variants trained for accuracy: HardwareParams fields that differ from the defaults."""


def train_variant(name: str, hardware: dict, data, args, log) -> list[dict]:
    """Train one variant on the sim backend; one row per epoch."""
    epochs = args.short_epochs if hardware.get("acc_bits") == 16 else args.epochs
    if hardware.get("acc_bits") == 16:
        data = dataclasses.replace(data, train_images=data.train_images[:args.short_limit_train],
                                   train_labels=data.train_labels[:args.short_limit_train])
    config = TrainConfig(model="lenet5", dataset="mnist", epochs=epochs, seed=args.seed,
                         backend="sim", gemm_engine="blas", hardware=hardware or None)
    built = build_network(get_model("lenet5"), data.image_shape, data.classes, config.seed)
    run = SimBackend(built, data, config)
    rows = []
    for epoch in range(epochs):
        start = time.perf_counter()
        order = epoch_order(config.seed, epoch, len(data.train_labels))
        for step, index in enumerate(batches(order, config.batch_size)):
            run.train_batch(index, epoch)
            if step % 20 == 0:
                log(f"{name}: epoch {epoch + 1}/{epochs} step {step}")
        seconds = time.perf_counter() - start
        _, stats = run.take_epoch()
        _, accuracy = run.evaluate(data.test_images, data.test_labels)
        counts = pd.DataFrame([vars(s) for s in stats.values()]).sum()
        rows.append({"variant": name, **{k: hardware.get(k, "") for k in
                                         ("acc_bits", "exponent", "rows", "cols")},
                     "epoch": epoch + 1, "m_u": config.mu_at(epoch),
                     "test_accuracy_pct": round(100 * accuracy, 2),
                     "train_images": len(data.train_labels), "test_images": len(data.test_labels),
                     "outputs": int(counts.outputs), "saturated_outputs": int(counts.saturated),
                     "beyond_predicted_exponent": int(counts.beyond_exponent),
                     "skipped_updates": int(counts.skipped_updates),
                     "train_seconds": round(seconds, 1)})
        log(f"{name}: epoch {epoch + 1} test accuracy {100 * accuracy:.2f} %")
    return rows


def accuracy(args) -> pd.DataFrame:
    RESULTS.mkdir(parents=True, exist_ok=True)
    data = prepare(load_dataset("mnist", limit_train=args.limit_train, limit_test=args.limit_test))
    target = RESULTS / "accuracy_epochs.csv"
    done = pd.read_csv(target) if target.exists() and args.keep else pd.DataFrame()

    def log(text):
        print(f"{time.strftime('%H:%M:%S')} {text}", flush=True)

    for name in args.variants:
        if not done.empty and name in set(done.variant):
            continue
        rows = train_variant(name, VARIANTS[name], data, args, log)
        done = pd.concat([done, pd.DataFrame(rows)], ignore_index=True)
        done.to_csv(target.with_suffix(".tmp"), index=False)
        target.with_suffix(".tmp").replace(target)
    return done


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="step", required=True)
    acc = sub.add_parser("accuracy", help="train LeNet-5 on MNIST per hardware variant")
    acc.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS),
                     metavar="NAME")
    acc.add_argument("--limit-train", type=int, default=10000)
    acc.add_argument("--limit-test", type=int, default=2000)
    acc.add_argument("--epochs", type=int, default=3)
    acc.add_argument("--short-epochs", type=int, default=1,
                     help="epochs of the 16-bit variant (every GEMM saturates: slow to model)")
    acc.add_argument("--short-limit-train", type=int, default=2560,
                     help="training images of the 16-bit variant")
    acc.add_argument("--seed", type=int, default=0)
    acc.add_argument("--keep", action="store_true", help="skip variants already in the CSV")
    args = parser.parse_args(argv)
    if args.step == "accuracy":
        print(accuracy(args).to_string(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
