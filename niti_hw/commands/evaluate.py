"""`niti-hw evaluate`: test loss and accuracy of a saved run, on its dataset or another.

Images are quantised around the pixel mean the run was trained with; the run's own settings
(model, rounding modes, seed) come from the checkpoint.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from niti_hw.commands import int_at_least
from niti_hw.commands.train import add_engine_arguments
from niti_hw.data import DATASETS


def register(subparsers) -> None:
    p = subparsers.add_parser("evaluate", help="test accuracy and loss of a saved run",
                              description=__doc__)
    p.add_argument("checkpoint", type=Path, metavar="CHECKPOINT", help="a run's checkpoint.npz")
    p.add_argument("--dataset", choices=list(DATASETS), metavar="NAME",
                   help=f"one of: {', '.join(DATASETS)} (default: the run's)")
    p.add_argument("--data-root", help="folder of the dataset files (default: the run's)")
    p.add_argument("--limit-test", type=int_at_least(1),
                   help="use only the first N test images (default all)")
    add_engine_arguments(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from niti_hw.train.evaluation import evaluate_checkpoint

    table = evaluate_checkpoint(args.checkpoint, args.dataset, args.data_root, args.limit_test,
                                args.backend, args.device, args.gemm_engine)
    if args.format == "json":
        json.dump(json.loads(table.to_json(orient="records", double_precision=15)), sys.stdout,
                  indent=2)
        print()
    else:
        shown = table.assign(test_pct=(100 * table.test_accuracy).round(3),
                             test_loss=table.test_loss.round(4)).drop(columns="test_accuracy")
        print(shown.to_string(index=False))
    return 0
