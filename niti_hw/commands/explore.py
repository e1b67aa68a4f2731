"""`niti-hw explore SPACE.toml`: a design-space study (estimates, accuracy runs, synthesis) on Dask.

Every finished point is stored at once in the study folder; running the same space again skips
what is done, so a study that was stopped or killed resumes where it was. Without --scheduler the
study runs on a LocalCluster sized to the machine; with it, on an existing cluster (start one
with `dask scheduler` and `dask worker tcp://HOST:8786`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from niti_hw.commands import check_output_dir, int_at_least


def register(subparsers) -> None:
    p = subparsers.add_parser("explore", help="design-space study: Pareto front of estimates, "
                              "accuracy and area", description=__doc__)
    p.add_argument("space", type=Path, metavar="SPACE.toml", help="the design space")
    p.add_argument("--out", type=Path, help="study folder (default studies/<space file's stem>)")
    p.add_argument("--scheduler", metavar="tcp://HOST:PORT",
                   help="an existing Dask scheduler (default: a LocalCluster on this machine)")
    p.add_argument("--workers", type=int_at_least(1),
                   help="LocalCluster worker processes (default: one per core)")
    p.add_argument("--dashboard", default=":8787", metavar="[HOST]:PORT",
                   help="LocalCluster dashboard address (default :8787; another port if taken)")
    p.add_argument("--retry-failed", action="store_true",
                   help="compute failed points again (default: they stay recorded as failed)")
    p.add_argument("--check", action="store_true",
                   help="check the space and print how many points and tasks it has; run nothing")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="Dask's progress bar (default: when standard output is a terminal)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from niti_hw.extras import import_extra

    for package in ("distributed", "pyarrow", "plotly"):
        import_extra(package, "niti-hw explore")
    from niti_hw.explore.plan import make_plan
    from niti_hw.explore.space import load_space
    from niti_hw.explore.study import run_study

    space = load_space(args.space)
    out = args.out or Path("studies") / args.space.stem
    check_output_dir(out)
    if args.check:
        sampled = f"{space.samples} sampled by {space.sampler} from " if space.sampler != "grid" \
            else ""
        plan = make_plan(space) if space.sampler != "optuna" else None
        tasks = (f": {len(plan.designs)} design points, {len(plan.estimates)} estimates, "
                 f"{len(plan.accuracy)} accuracy runs, {len(plan.sizes)} array sizes"
                 if plan else "")
        count = len(space.points()) if space.sampler == "grid" else space.grid_size
        print(f"{args.space}: {sampled}{count} hardware points x "
              f"{len(space.workloads)} workloads{tasks}")
        return 0
    progress = sys.stdout.isatty() if args.progress is None else args.progress
    outcome = run_study(space, out, scheduler=args.scheduler, workers=args.workers,
                        dashboard=args.dashboard, progress=progress,
                        retry_failed=args.retry_failed,
                        log=lambda text: print(text, file=sys.stderr, flush=True))
    print(outcome.front.to_string(index=False))
    print(f"wrote {out}/results.csv, pareto.csv, pareto.png, report.html", file=sys.stderr)
    return 0
