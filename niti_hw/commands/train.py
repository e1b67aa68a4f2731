"""`niti-hw train`: NITI training on real data, optionally beside its fp32 twin.

Every argument is checked before any data is loaded: a fresh run needs a new --out folder; a
resumed run (--resume) keeps the checkpoint's settings, and only --epochs, --mu-schedule,
--gemm-engine and --out may change (see niti_hw/train/resume.py for the rules).
"""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path

from niti_hw.commands import check_output_dir, int_at_least
from niti_hw.commands._params_args import parse_array
from niti_hw.data import DATASETS
from niti_hw.golden import ROUNDING_MODES
from niti_hw.golden.gemm import DEFAULT_ENGINE, ENGINES
from niti_hw.golden.init import ACC_BITS_RANGE
from niti_hw.models import MODELS
from niti_hw.params import DEFAULT, EXPONENTS
from niti_hw.train.backend_names import BACKENDS
from niti_hw.train.config import DEVICES

FORMATS = ("table", "json")
SETTINGS = ("model", "dataset", "data_root", "epochs", "batch_size", "seed", "mu_schedule",
            "activation_mode", "error_mode", "gradient_mode", "loss_mode", "acc_bits",
            "limit_train", "limit_test", "backend", "device", "gemm_engine")
"""TrainConfig fields set by flags of the same name; a flag left out is None (not given)."""


def add_engine_arguments(p) -> None:
    """Where the integer arithmetic runs (train and evaluate)."""
    p.add_argument("--backend", choices=list(BACKENDS),
                   help="training engine: golden (the reference model, default), sim (the "
                        "datapath model, with a cycle and energy report), torch (GPU path)")
    p.add_argument("--device", choices=DEVICES, help="device of --backend torch (default cpu)")
    p.add_argument("--gemm-engine", choices=sorted(ENGINES),
                   help=f"exact int8 GEMM of the golden model (default {DEFAULT_ENGINE}; all "
                        "give the same integers, so a resumed run may change it)")
    p.add_argument("--format", choices=FORMATS, default="table",
                   help="results as a table (default) or one JSON document on stdout")


def register(subparsers) -> None:
    p = subparsers.add_parser("train", help="train a NITI network (and its fp32 twin)",
                              description=__doc__)
    p.add_argument("--model", choices=list(MODELS), metavar="NAME",
                   help=f"one of: {', '.join(MODELS)} (default lenet5)")
    p.add_argument("--dataset", choices=list(DATASETS), metavar="NAME",
                   help=f"one of: {', '.join(DATASETS)} (default mnist)")
    p.add_argument("--data-root", help="folder of the dataset files (needed by idx and cifar10; "
                                       "parsed MNIST is cached in $NITI_HW_CACHE, default "
                                       "~/.cache/niti-hw, safe to delete)")
    p.add_argument("--epochs", type=int_at_least(1),
                   help="total epochs, counting those already done on --resume (default 1)")
    p.add_argument("--batch-size", type=int_at_least(1), help="(default 64)")
    p.add_argument("--seed", type=int_at_least(0), help="(default 0)")
    p.add_argument("--mu-schedule", help="m_u per epoch as epoch:m_u pairs, e.g. 0:3,5:2 "
                                         "(default: the model's); on --resume it applies from "
                                         "the resumed epoch on")
    for kind in ("activation", "error", "gradient", "loss"):
        p.add_argument(f"--{kind}-mode", choices=ROUNDING_MODES, help="(default pseudo)")
    low, high = ACC_BITS_RANGE
    p.add_argument("--acc-bits", type=int,
                   help=f"weight accumulation bits, {low}..{high}: 8 is plain int8 (default), "
                        "the paper uses 12 or 16 for ImageNet")
    hw = p.add_argument_group("datapath model (--backend sim)")
    hw.add_argument("--array", metavar="ROWSxCOLS", help="systolic array (default 8x8)")
    hw.add_argument("--accumulator-bits", type=int, metavar="N",
                    help="array accumulator width, 16..32; narrower ones saturate (default 32)")
    hw.add_argument("--exponent", choices=EXPONENTS,
                    help="shift of each narrowing from B of the whole tensor (default, SPEC), of "
                         "each array tile (the RTL Datapath), or of the previous step (predicted)")
    hw.add_argument("--exponent-headroom", type=int, metavar="BITS",
                    help="bits a predicted exponent adds to the previous step's B, 0..8 "
                         "(default 0; needs --exponent predicted)")
    p.add_argument("--limit-train", type=int_at_least(1), help="use only the first N training images")
    p.add_argument("--limit-test", type=int_at_least(1), help="use only the first N test images")
    p.add_argument("--baseline", choices=["fp32"], help="also train the fp32 PyTorch twin")
    p.add_argument("--out", type=Path,
                   help="output folder (default: a new runs/MODEL-DATASET-TIME folder; on "
                        "--resume, the checkpoint's folder)")
    p.add_argument("--resume", type=Path, metavar="CHECKPOINT",
                   help="continue from this checkpoint.npz (it is never overwritten by a "
                        "run written elsewhere)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    add_engine_arguments(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from niti_hw.extras import import_extra
    from niti_hw.train import TrainConfig, Trainer, parse_schedule
    from niti_hw.train.resume import NothingToDo
    from niti_hw.train.trainer import check_fresh_output

    given = {name: getattr(args, name) for name in SETTINGS}
    given["hardware"] = hardware_from_args(args)
    if given["mu_schedule"] is not None:
        given["mu_schedule"] = parse_schedule(given["mu_schedule"])
    if args.out is not None:
        check_output_dir(args.out)
    if args.baseline:
        import_extra("torch", "the fp32 baseline (--baseline fp32)")
    progress = not args.quiet
    if args.resume:
        try:
            trainer = Trainer.resume(args.resume, progress=progress, out_dir=args.out,
                                     overrides=given, baseline=bool(args.baseline))
        except NothingToDo as message:
            print(message)
            return 0
    else:
        config = TrainConfig(**{name: value for name, value in given.items() if value is not None})
        stamp = time.strftime("%Y%m%d-%H%M%S")
        out = args.out or Path("runs") / f"{config.model}-{config.dataset}-{stamp}"
        check_fresh_output(out)
        trainer = Trainer(config, out, baseline=args.baseline == "fp32", progress=progress)
    metrics = trainer.fit()
    files = {name: str(trainer.out_dir / name)
             for name in ("metrics.csv", "curves.png", "checkpoint.npz", "config.json")}
    if args.format == "json":
        json.dump({"out_dir": str(trainer.out_dir), "files": files,
                   "summary": _records(summary(metrics).reset_index()),
                   "metrics": _records(metrics)}, sys.stdout, indent=2)
        print()
    else:
        print(summary(metrics).to_string())
        print("\n" + "  ".join(f"{name.split('.')[0]}: {path}" for name, path in files.items()))
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
    if args.exponent_headroom is not None:
        hardware["exponent_headroom"] = args.exponent_headroom
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


def _records(table) -> list[dict]:
    """Rows as JSON values: missing ones (m_u of the fp32 twin) as null."""
    return json.loads(table.to_json(orient="records", double_precision=15))
