"""`niti-hw train`: NITI training on real data, optionally beside its fp32 twin."""

from __future__ import annotations

import math
import time
from pathlib import Path

from ..data import DATASETS
from ..golden import ROUNDING_MODES
from ..models import MODELS
from ..params import DEFAULT, EXPONENTS
from ._params_args import parse_array


def register(subparsers) -> None:
    p = subparsers.add_parser("train", help="train a NITI network (and its fp32 twin)",
                              description=__doc__)
    p.add_argument("--model", choices=list(MODELS), metavar="NAME",
                   help=f"one of: {', '.join(MODELS)} (default lenet5)")
    p.add_argument("--dataset", default="mnist", choices=list(DATASETS), metavar="NAME",
                   help=f"one of: {', '.join(DATASETS)} (default mnist)")
    p.add_argument("--data-root", help="folder of the dataset files (idx, cifar10)")
    p.add_argument("--epochs", type=int, default=1, help="total epochs (default 1)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--mu-schedule", help="m_u per epoch as epoch:m_u pairs, e.g. 0:3,5:2 "
                                         "(default: the model's)")
    for kind in ("activation", "error", "gradient", "loss"):
        p.add_argument(f"--{kind}-mode", default="pseudo", choices=ROUNDING_MODES)
    p.add_argument("--acc-bits", type=int, default=8,
                   help="weight accumulation bits: 8 (plain), 12 or 16 (the paper's ImageNet)")
    hw = p.add_argument_group("datapath model (--backend sim)")
    hw.add_argument("--array", metavar="ROWSxCOLS", help="systolic array (default 8x8)")
    hw.add_argument("--accumulator-bits", type=int, metavar="N",
                    help="array accumulator width, 16..32; narrower ones saturate (default 32)")
    hw.add_argument("--exponent", choices=EXPONENTS,
                    help="shift of each narrowing from B of the whole tensor (default, SPEC), of "
                         "each array tile (the RTL Datapath), or of the previous step (predicted)")
    p.add_argument("--limit-train", type=int, help="use only the first N training images")
    p.add_argument("--limit-test", type=int, help="use only the first N test images")
    p.add_argument("--baseline", choices=["fp32"], help="also train the fp32 PyTorch twin")
    p.add_argument("--out", type=Path,
                   help="output folder (default: a new runs/MODEL-DATASET-TIME folder)")
    p.add_argument("--resume", type=Path, help="continue from this checkpoint.npz")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..train import TrainConfig, Trainer, parse_schedule

    if args.resume:
        trainer = Trainer.resume(args.resume, args.epochs, progress=not args.quiet)
        if args.model and args.model != trainer.config.model:
            raise ValueError(f"{args.resume} holds a {trainer.config.model} run, not "
                             f"{args.model}; nothing was changed")
    else:
        config = TrainConfig(
            model=args.model or "lenet5", dataset=args.dataset, data_root=args.data_root,
            epochs=args.epochs, batch_size=args.batch_size, seed=args.seed,
            mu_schedule=parse_schedule(args.mu_schedule) if args.mu_schedule else None,
            activation_mode=args.activation_mode, error_mode=args.error_mode,
            gradient_mode=args.gradient_mode, loss_mode=args.loss_mode, acc_bits=args.acc_bits,
            limit_train=args.limit_train, limit_test=args.limit_test,
            hardware=hardware_from_args(args),
        )
        stamp = time.strftime("%Y%m%d-%H%M%S")
        out = args.out or Path("runs") / f"{config.model}-{config.dataset}-{stamp}"
        trainer = Trainer(config, out, baseline=args.baseline == "fp32",
                          progress=not args.quiet)
        trainer.check_fresh_output()
    metrics = trainer.fit()
    print(summary(metrics).to_string())
    print(f"\nmetrics: {trainer.out_dir / 'metrics.csv'}  curves: {trainer.out_dir / 'curves.png'}"
          f"  checkpoint: {trainer.out_dir / 'checkpoint.npz'}")
    return 0


def hardware_from_args(args) -> dict | None:
    """The datapath flags as HardwareParams fields (None when none is given)."""
    hardware = {}
    if args.array:
        hardware["rows"], hardware["cols"] = parse_array(args.array)
        hardware["lanes"] = math.gcd(hardware["cols"], DEFAULT.lfsr_lanes)  # as `estimate`
    if args.accumulator_bits is not None:
        hardware["acc_bits"] = args.accumulator_bits
    if args.exponent:
        hardware["exponent"] = args.exponent
    return hardware or None


def summary(metrics):
    """Per run: best and final test accuracy (%), final train loss, mean training speed."""
    grouped = metrics.groupby("run", sort=False)
    table = grouped.agg(epochs=("epoch", "size"), best_test_pct=("test_accuracy", "max"),
                        final_test_pct=("test_accuracy", "last"),
                        final_train_loss=("train_loss", "last"),
                        images_per_s=("images_per_s", "mean"))
    table[["best_test_pct", "final_test_pct"]] *= 100
    return table.round(3)
