"""`niti-hw bench`: what int8 buys on this machine, beside the simulated accelerator.

Two tables, measured in this one process with the same thread count: exact int8 GEMM throughput
against fp32 and bf16 matmul at several sizes, and images/s of a NITI int8 training step on each
backend against the same network trained in PyTorch fp32 and with bf16 autocast. Where the cycle
model (`niti_hw.perf`) is present, the accelerator's projected images/s and energy per image are
added. Writes bench_gemm.csv, bench_train.csv and bench.png to --out.

With --profile it instead profiles the NITI step per kind of operation (GEMM per phase, im2col,
col2im, bitwidth, rounding, LFSR draws, pooling, ReLU, loss, update, range checks, other) for each
model, backend and rounding mode, beside the fp32 twin's step, into bench_profile.csv.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd

from niti_hw.atomic_write import atomic_write
from niti_hw.commands import Distinct, check_output_dir, int_at_least
from niti_hw.extras import import_extra
from niti_hw.models import MODELS, get_model
from niti_hw.golden import ROUNDING_MODES
from niti_hw.train.config import DEVICES

NITI_BACKENDS = ("golden", "torch")


def register(subparsers) -> None:
    p = subparsers.add_parser("bench", help="int8 vs fp32/bf16: GEMM and training throughput",
                              description=__doc__)
    p.add_argument("--device", choices=DEVICES, default="cpu",
                   help="where torch runs (default cpu); golden always runs on the CPU")
    p.add_argument("--sizes", type=int_at_least(8), nargs="+", action=Distinct,
                   default=[256, 512, 1024, 2048], metavar="N",
                   help="square GEMM sizes (default 256 512 1024 2048)")
    p.add_argument("--models", nargs="+", action=Distinct, choices=list(MODELS),
                   default=["lenet5", "vgg-small-7"], metavar="MODEL",
                   help="networks to train (default lenet5 vgg-small-7)")
    p.add_argument("--backends", nargs="+", action=Distinct, choices=NITI_BACKENDS,
                   default=list(NITI_BACKENDS), help="NITI backends to time (default golden torch)")
    p.add_argument("--batch-size", type=int_at_least(1), default=64)
    p.add_argument("--batches", type=int_at_least(1), default=3, help="timed batches per run")
    p.add_argument("--threads", type=int_at_least(1), help="torch threads (default: torch's)")
    p.add_argument("--out", type=Path, default=Path("bench"), help="output folder (default bench/)")
    p.add_argument("--profile", action="store_true",
                   help="profile the NITI step per kind of operation instead (bench_profile.csv)")
    p.add_argument("--modes", nargs="+", choices=ROUNDING_MODES, default=list(ROUNDING_MODES),
                   help="rounding modes to profile (default all three)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    torch = import_extra("torch", "niti-hw bench")
    from niti_hw.train.torch_backend import torch_device

    device = torch_device(args.device)  # one-line error before any work when CUDA is absent
    check_output_dir(args.out)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.profile:
        return run_profile(args, device)
    gemm = gemm_table(args.sizes, device)
    train = train_table(args.models, args.backends, device, args.batch_size, args.batches)
    args.out.mkdir(parents=True, exist_ok=True)
    gemm.to_csv(args.out / "bench_gemm.csv", index=False)
    train.to_csv(args.out / "bench_train.csv", index=False)
    plot(gemm, train, args.out / "bench.png")
    with pd.option_context("display.width", 160, "display.max_columns", 20):
        print(gemm.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
        print()
        print(train.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    print(f"\nwrote {args.out / 'bench_gemm.csv'}, {args.out / 'bench_train.csv'}, "
          f"{args.out / 'bench.png'}")
    return 0


def run_profile(args: argparse.Namespace, device) -> int:
    table = profile_runs(args.models, args.backends, device, args.batch_size, args.batches,
                         args.modes)
    args.out.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out / "bench_profile.csv", index=False)
    print(format_profile(table))
    print(f"\nwrote {args.out / 'bench_profile.csv'}")
    return 0


def _timer(device):
    """Seconds of one call, waiting for the device to finish."""
    import torch

    def measure(function) -> float:
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        function()
        if device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - start
    return measure


def best_of(function, measure, repeat: int = 3) -> float:
    function()  # warm-up: lazy initialisation, caches, kernel selection
    return min(measure(function) for _ in range(repeat))


def gemm_table(sizes, device, repeat: int = 3) -> pd.DataFrame:
    """TOPS of n x n x n products: the exact int8 engines, fp32 and bf16 matmul."""
    import torch

    from niti_hw.golden.gemm import int_mm_is_fast, int_mm_layout, tensor_matmul

    measure = _timer(device)
    slow_int_mm = device.type == "cpu" and not int_mm_is_fast()
    rows = []
    for n in sizes:
        a = torch.randint(-127, 128, (n, n), dtype=torch.int8, device=device)
        b = torch.randint(-127, 128, (n, n), dtype=torch.int8, device=device)
        kinds = {
            "int8 exact (torch backend's engine)": lambda: tensor_matmul(a, b),
            "fp32 matmul": (lambda x, y: lambda: x @ y)(a.float(), b.float()),
            "bf16 matmul": (lambda x, y: lambda: x @ y)(a.bfloat16(), b.bfloat16()),
        }
        if not slow_int_mm or n <= 256:  # torch's CPU fallback loop takes minutes beyond
            # the bare kernel, operands laid out beforehand (B column-major on CUDA)
            pa, pb = int_mm_layout(a, b) if device.type == "cuda" else (a, b)
            kinds["int8 torch._int_mm"] = (lambda x, y: lambda: torch._int_mm(x, y))(pa, pb)
        for kind, function in kinds.items():
            seconds = best_of(function, measure, repeat)
            rows.append({"device": device.type, "n": n, "kind": kind, "seconds": seconds,
                         "tops": 2 * n**3 / seconds / 1e12})
    table = pd.DataFrame(rows)
    fp32 = table[table.kind == "fp32 matmul"].set_index("n").seconds
    table["x fp32"] = table.n.map(fp32) / table.seconds
    return table


def bench_data(model: str, count: int):
    """Random images of the model's input shape: throughput does not depend on the pixels."""
    from niti_hw.data import Dataset
    from niti_hw.train.prepared import prepare

    rng = np.random.default_rng(0)
    shape = get_model(model).input_shape
    images = rng.integers(0, 256, (count, *shape), dtype=np.uint8)
    labels = rng.integers(0, 10, count).astype(np.int64)
    return prepare(Dataset(images, labels, images[:1], labels[:1], "random", 10))


class TwinStep:
    """The fp32 twin (same architecture, initial weights and SGD as the trainer's baseline) on a
    device, optionally under bf16 autocast."""

    def __init__(self, built, data, device, bf16: bool):
        import torch

        from niti_hw.train.float_run import LEARNING_RATE, MOMENTUM, WEIGHT_DECAY, twin_module

        self.torch, self.device, self.bf16 = torch, device, bf16
        self.model = twin_module(built).to(device)
        self.optimiser = torch.optim.SGD(self.model.parameters(), lr=LEARNING_RATE,
                                         momentum=MOMENTUM, weight_decay=WEIGHT_DECAY)
        images = torch.from_numpy(data.train_images.astype(np.float32) * 2.0**data.exp)
        self.images = images.permute(0, 3, 1, 2).contiguous().to(device)
        self.labels = torch.from_numpy(data.train_labels).to(device)
        self.label = "bf16 autocast" if bf16 else "fp32"

    def train_batch(self, index, epoch):
        torch = self.torch
        rows = torch.from_numpy(index).to(self.device)
        self.optimiser.zero_grad()
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16):
            out = self.model(self.images.index_select(0, rows))
            loss = torch.nn.functional.cross_entropy(out, self.labels.index_select(0, rows))
        loss.backward()
        self.optimiser.step()


def train_table(models, backends, device, batch_size: int, batches: int,
                twins=("fp32", "bf16"), mode: str = "pseudo") -> pd.DataFrame:
    """images/s of one training step per backend (every tensor kind rounded in `mode`) and of
    the fp32 / bf16 twins, per model: the
    runs take turns batch by batch, and each run's median step counts."""
    from niti_hw.train import TrainConfig
    from niti_hw.train.backend import backend_factory
    from niti_hw.train.build import build_network

    measure = _timer(device)
    rows = []
    for model in models:
        data = bench_data(model, batch_size * (batches + 1))
        built = build_network(get_model(model), data.image_shape, data.classes, seed=0)
        index = [np.arange(i * batch_size, (i + 1) * batch_size) for i in range(batches + 1)]
        runs = {}
        for name in backends:
            on = device.type if name == "torch" else "cpu"
            config = TrainConfig(model=model, batch_size=batch_size, backend=name, device=on,
                                 activation_mode=mode, error_mode=mode, gradient_mode=mode,
                                 loss_mode=mode)
            runs[f"niti int8 {name} ({on})"] = backend_factory(name)(built, data, config)
        runs[f"fp32 ({device.type})"] = TwinStep(built, data, device, bf16=False)
        if "bf16" in twins:
            runs[f"bf16 autocast ({device.type})"] = TwinStep(built, data, device, bf16=True)
        for run in runs.values():
            run.train_batch(index[0], 0)  # warm-up
        times = {label: [] for label in runs}
        for batch in index[1:]:  # round robin: a burst of load elsewhere hits every run alike
            for label, run in runs.items():
                times[label].append(measure(lambda: run.train_batch(batch, 0)))
        for label, spent in times.items():
            seconds = float(np.median(spent)) * batches  # the median step: robust to bursts
            rows.append({"model": model, "run": label, "batch_size": batch_size,
                         "batches": batches, "seconds": seconds,
                         "images_per_s": batches * batch_size / seconds})
        rows += accelerator_rows(model, data.image_shape, batch_size)
    table = pd.DataFrame(rows)
    fp32 = table[table.run == f"fp32 ({device.type})"].set_index("model").images_per_s
    table["x fp32"] = table.images_per_s / table.model.map(fp32)
    return table


def profile_runs(models, backends, device, batch_size: int, batches: int,
                 modes=ROUNDING_MODES) -> pd.DataFrame:
    """ms per step of each kind of operation (`step_profile`) for each model, NITI backend and
    rounding mode (all four tensor kinds in that mode), and the fp32 twin's whole step."""
    import torch

    from niti_hw.train import TrainConfig
    from niti_hw.train.backend import backend_factory
    from niti_hw.train.build import build_network
    from niti_hw.train.step_profile import profile_steps, profile_table

    measure = _timer(device)
    sync = torch.cuda.synchronize if device.type == "cuda" else None
    parts = []
    for model in models:
        data = bench_data(model, batch_size * (batches + 1))
        built = build_network(get_model(model), data.image_shape, data.classes, seed=0)
        index = [np.arange(i * batch_size, (i + 1) * batch_size) for i in range(batches + 1)]
        twin = TwinStep(built, data, device, bf16=False)
        twin.train_batch(index[0], 0)
        seconds = measure(lambda: [twin.train_batch(batch, 0) for batch in index[1:]])
        parts.append(pd.DataFrame([{"model": model, "run": f"fp32 ({device.type})", "mode": "",
                                    "category": "step", "ms_per_step": 1e3 * seconds / batches,
                                    "share": 1.0}]))
        for name in backends:
            on = device.type if name == "torch" else "cpu"
            for mode in modes:
                config = TrainConfig(model=model, batch_size=batch_size, backend=name, device=on,
                                     activation_mode=mode, error_mode=mode, gradient_mode=mode,
                                     loss_mode=mode)
                run = backend_factory(name)(built, data, config)
                run.train_batch(index[0], 0)  # warm-up
                profile = profile_steps(run, index[1:], sync if on == "cuda" else None)
                parts.append(profile_table(profile, batches, model=model,
                                           run=f"niti int8 {name} ({on})", mode=mode))
    table = pd.concat(parts, ignore_index=True)
    fp32 = table[table.run.str.startswith("fp32")].set_index("model").ms_per_step
    table["x fp32"] = (table.model.map(fp32) / table.ms_per_step).where(table.category == "step")
    return table


def format_profile(table: pd.DataFrame) -> str:
    """One column per model, run and mode: ms per step (share of the step) per category."""
    cells = table.assign(cell=[f"{ms:.2f} ({share:.0%})" for ms, share
                               in zip(table.ms_per_step, table.share)])
    steps = table[table.category == "step"]
    cells.loc[steps.index, "cell"] = [f"{ms:.2f} ({ratio:.2f}x fp32)" for ms, ratio
                                      in zip(steps.ms_per_step, steps["x fp32"])]
    pivot = cells.pivot_table(index="category", columns=["model", "run", "mode"], values="cell",
                              aggfunc="first", sort=False)
    with pd.option_context("display.width", 250, "display.max_columns", 40,
                           "display.max_colwidth", 30):
        return "ms per step (share of the step)\n" + pivot.fillna("").to_string()


def accelerator_rows(model: str, image_shape, batch_size: int) -> list[dict]:
    """The simulated accelerator's projection from the cycle model, when niti_hw.perf exists."""
    try:
        from niti_hw.perf.clock import clock_mhz
        from niti_hw.perf.cost import estimate, totals
        from niti_hw.perf.lowering import lower
    except ImportError:
        return []
    from niti_hw.params import DEFAULT

    h, w, c = image_shape
    ops = lower(model, (c, h, w), batch_size, classes=10)
    mhz, _ = clock_mhz(DEFAULT)
    step = totals(estimate(ops, DEFAULT), DEFAULT, mhz, by=None).loc["step"]
    seconds = step["time_ms"] / 1e3
    return [{"model": model, "run": f"accelerator {DEFAULT.name} @ {mhz:.0f} MHz (cycle model)",
             "batch_size": batch_size, "batches": 1, "seconds": seconds,
             "images_per_s": batch_size / seconds,
             "energy_uj_per_image": step["energy_uj"] / batch_size}]


def plot(gemm: pd.DataFrame, train: pd.DataFrame, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    for kind, rows in gemm.groupby("kind"):
        left.plot(rows.n, rows.tops, marker="o", label=kind)
    left.set(xscale="log", yscale="log", xlabel="n (n x n x n GEMM)", ylabel="TOPS",
             title=f"GEMM throughput ({gemm.device.iloc[0]})")
    left.legend(fontsize=8)
    pivot = train.pivot(index="model", columns="run", values="images_per_s")
    pivot.plot.bar(ax=right, logy=True, rot=0)
    right.set(ylabel="images/s (log)", title="One training step")
    right.legend(fontsize=7)
    for axis in (left, right):
        axis.grid(alpha=0.3, which="both")
    fig.tight_layout()
    with atomic_write(path) as tmp:
        fig.savefig(tmp, dpi=100)
    plt.close(fig)
