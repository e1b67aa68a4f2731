"""Co-design study of a NITI training accelerator: what each hardware choice costs and what it does
to accuracy. Tables (CSV) and plots (PNG) go to sw/results/codesign/.

    python sw/codesign.py accuracy   # LeNet-5 on MNIST through the datapath model (hours)
    python sw/codesign.py costs      # cycles, bytes, energy from shapes alone (seconds)
    python sw/codesign.py plots      # the plots, from the CSVs of the two steps above

`accuracy` trains LeNet-5 on MNIST once per hardware variant (accumulator width 16/20/24/32 bits,
per-tile and predicted exponents, with and without headroom) on the `sim` backend and records the
test accuracy after every epoch, with what the values did (saturated accumulator outputs, values
beyond a predicted exponent). Full MNIST for 10 epochs by default; variants can run in parallel
processes (`--variants`, `--csv accuracy_epochs_a.csv`). The int32 / whole-tensor variant is
bit-identical to the golden model, so its row is the recorded golden run (`GOLDEN_RUN`). The
earlier subset study (`--limit-train 10000 --limit-test 2000 --epochs 3 --csv
accuracy_subset_epochs.csv`) is kept beside it.
`costs` lowers LeNet-5 (MNIST), VGG-small-7 and VGG16 (CIFAR-10 shapes) with niti_hw.perf.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import pandas as pd

from niti_hw.data import load_dataset
from niti_hw.models import get_model
from niti_hw.params import DEFAULT, EXPONENTS
from niti_hw.perf.clock import clock_mhz
from niti_hw.perf.cost import estimate
from niti_hw.perf.exponent import exponent_ops, int32_buffer_words
from niti_hw.perf.lowering import lower
from niti_hw.train import TrainConfig
from niti_hw.train.build import build_network
from niti_hw.train.prepared import batches, epoch_order, prepare
from niti_hw.train.sim_backend import SimBackend

RESULTS = Path(__file__).resolve().parent / "results" / "codesign"

VARIANTS = {
    "int32, tensor exponent": {},
    "predicted exponent": {"exponent": "predicted"},
    "predicted exponent, 1 bit headroom": {"exponent": "predicted", "exponent_headroom": 1},
    "per-tile exponent 8x8": {"exponent": "tile"},
    "per-tile exponent 32x32": {"exponent": "tile", "rows": 32, "cols": 32},
    "24-bit accumulator": {"acc_bits": 24},
    "20-bit accumulator": {"acc_bits": 20},
    "16-bit accumulator": {"acc_bits": 16},
}
"""Hardware variants trained for accuracy: HardwareParams fields that differ from the defaults."""


def train_variant(name: str, hardware: dict, data, args, log):
    """Train one variant on the sim backend, yielding one row per epoch as it ends."""
    epochs = args.epochs
    config = TrainConfig(model="lenet5", dataset="mnist", epochs=epochs, seed=args.seed,
                         backend="sim", gemm_engine="blas", hardware=hardware or None)
    built = build_network(get_model("lenet5"), data.image_shape, data.classes, config.seed)
    run = SimBackend(built, data, config)
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
        hw = config.hardware_params()
        yield {"variant": name, "epochs": epochs, **{k: getattr(hw, k) for k in
                                         ("acc_bits", "exponent", "exponent_headroom",
                                                          "rows", "cols")},
                     "seed": config.seed, "epoch": epoch + 1, "m_u": config.mu_at(epoch),
                     "test_accuracy_pct": round(100 * accuracy, 2),
                     "train_images": len(data.train_labels), "test_images": len(data.test_labels),
                     "outputs": int(counts.outputs), "saturated_outputs": int(counts.saturated),
                     "beyond_predicted_exponent": int(counts.beyond_exponent),
                     "skipped_updates": int(counts.skipped_updates),
                     "train_seconds": round(seconds, 1)}
        log(f"{name}: epoch {epoch + 1} test accuracy {100 * accuracy:.2f} %")


def accuracy(args) -> pd.DataFrame:
    RESULTS.mkdir(parents=True, exist_ok=True)
    data = prepare(load_dataset("mnist", limit_train=args.limit_train, limit_test=args.limit_test))
    target = RESULTS / args.csv
    done = pd.read_csv(target) if target.exists() and args.keep else pd.DataFrame()

    def log(text):
        print(f"{time.strftime('%H:%M:%S')} {text}", flush=True)

    finished = set(done.variant[done.epoch == done.epochs]) if not done.empty else set()
    if not done.empty:  # a variant cut short is trained again from its first epoch
        done = done[done.variant.isin(finished)]
    for name in args.variants:
        if name in finished:
            continue
        for row in train_variant(name, VARIANTS[name], data, args, log):
            done = pd.concat([done, pd.DataFrame([row])], ignore_index=True)
            done.to_csv(target.with_suffix(".tmp"), index=False)  # every epoch, atomically
            target.with_suffix(".tmp").replace(target)
    return done


WORKLOADS = {  # model: (input C x H x W, batch) of one training step
    "lenet5": ((1, 28, 28), 64),
    "vgg-small-7": ((3, 32, 32), 128),
    "vgg16": ((3, 32, 32), 128),
}
ARRAYS = (4, 8, 16, 32, 64)
ACC_WIDTHS = (16, 20, 24, 32)


def hardware(rows: int = DEFAULT.rows, cols: int = DEFAULT.cols, **changes):
    """The default hardware at another array size (lanes as `niti-hw estimate` picks them)."""
    return DEFAULT.replace(rows=rows, cols=cols, lanes=math.gcd(cols, DEFAULT.lfsr_lanes),
                           **changes)


def step_totals(ops, params, datapath: str = "int8") -> dict:
    table = estimate(ops, params, datapath=datapath)
    macs, cycles = int(table.macs.sum()), int(table.cycles.sum())
    return {"macs": macs, "cycles": cycles,
            "utilisation": round(macs / (params.rows * params.cols * cycles), 4),
            "time_ms": round(cycles / (clock_mhz(params)[0] * 1e3), 3),
            "dram_MB": round((table.dram_read_bytes.sum() + table.dram_write_bytes.sum()) / 1e6, 3),
            "spill_MB": round(table.spill_bytes.sum() / 1e6, 3),
            "energy_mJ": round(table.energy_pj.sum() / 1e9, 4)}


def costs(args) -> dict[str, pd.DataFrame]:
    """Every shape-only table of the study, from perf's one lowering."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    tables = {name: [] for name in ("int32_buffer", "exponent_costs", "accumulator_costs",
                                    "int8_vs_fp32", "array_utilisation")}
    for model, (shape, batch) in WORKLOADS.items():
        ops = lower(model, shape, batch)
        workload = {"model": model, "input": "x".join(map(str, shape)), "batch": batch}
        kept = {e: int32_buffer_words(exponent_ops(ops, e)) for e in EXPONENTS}
        for (layer, phase), words in kept["tensor"].items():
            tables["int32_buffer"].append({
                **workload, "layer": layer, "phase": phase, "tensor_int32_words": words,
                "tensor_MB": round(words * 4 / 1e6, 3),
                "spills_default_buffer": words > DEFAULT.tensor_buffer_words,
                "predicted_int32_words": kept["predicted"].get((layer, phase), 0)})
        for exponent in EXPONENTS:
            tables["exponent_costs"].append({**workload, "exponent": exponent, **step_totals(
                exponent_ops(ops, exponent), hardware(exponent=exponent))})
        for bits in ACC_WIDTHS:
            tables["accumulator_costs"].append({**workload, "acc_bits": bits,
                                                **step_totals(ops, hardware(acc_bits=bits))})
        int8, fp32 = step_totals(ops, hardware()), step_totals(ops, hardware(), "fp32")
        for name, row in (("int8 (NITI)", int8), ("fp32", fp32)):
            tables["int8_vs_fp32"].append({**workload, "datapath": name, **row})
        tables["int8_vs_fp32"].append({
            **workload, "datapath": "int8 / fp32",
            **{k: round(int8[k] / fp32[k], 4) for k in ("cycles", "energy_mJ", "dram_MB")}})
        for size in ARRAYS:
            tables["array_utilisation"].append({**workload, "array": f"{size}x{size}",
                                                **step_totals(ops, hardware(size, size))})
    frames = {name: pd.DataFrame(rows) for name, rows in tables.items()}
    for name, frame in frames.items():
        frame.to_csv(RESULTS / f"{name}.csv", index=False)
    return frames


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, name: str) -> None:
    fig.tight_layout()
    fig.savefig(RESULTS / name, dpi=110)
    print(f"wrote {RESULTS / name}")


def accuracy_summary(accuracy: pd.DataFrame) -> pd.DataFrame:
    """Per variant and seed: test accuracy after the first and the last epoch, and how often the
    hardware choice bit (saturated accumulator outputs, values beyond a predicted exponent)."""
    grouped = accuracy.groupby(["variant", "seed"], sort=False)
    table = grouped.agg(train_images=("train_images", "first"), epochs=("epoch", "max"),
                        epoch1_pct=("test_accuracy_pct", "first"),
                        final_pct=("test_accuracy_pct", "last"), outputs=("outputs", "sum"),
                        saturated=("saturated_outputs", "sum"),
                        beyond=("beyond_predicted_exponent", "sum"))
    table["saturated_per_million"] = (1e6 * table.saturated / table.outputs).round(1)
    table["beyond_exponent_per_million"] = (1e6 * table.beyond / table.outputs).round(1)
    return table.drop(columns=["outputs", "saturated", "beyond"]).reset_index()


GOLDEN_RUN = RESULTS.parent / "mnist" / "metrics.csv"
"""The recorded 10-epoch golden LeNet-5 run: the int32, whole-tensor variant of the full study (the
sim backend at default hardware is bit-identical to golden, tests/test_sim_backend.py)."""


def full_accuracy_runs() -> pd.DataFrame:
    """Every `accuracy_epochs*.csv` (parallel halves of the full-MNIST study), after the golden run."""
    golden = pd.read_csv(GOLDEN_RUN)
    golden = golden[golden.run == "niti-int8"]
    baseline = pd.DataFrame({
        "variant": "int32, tensor exponent (golden run)", "epochs": len(golden), "acc_bits": 32,
        "exponent": "tensor", "exponent_headroom": 0, "rows": DEFAULT.rows, "cols": DEFAULT.cols,
        "seed": 0, "epoch": golden.epoch + 1, "m_u": golden.m_u,
        "test_accuracy_pct": (100 * golden.test_accuracy).round(2), "train_images": 60000,
        "test_images": 10000})
    parts = [pd.read_csv(path) for path in sorted(RESULTS.glob("accuracy_epochs*.csv"))]
    return pd.concat([baseline, *parts], ignore_index=True)


CHANCE_PCT = 50
"""Variants that end below this (a network that does not learn) are named under the plot instead of
stretching its axis down to 10 %."""


def _accuracy_plot(plt, accuracy: pd.DataFrame, stem: str) -> None:
    fig, ax = plt.subplots(figsize=(8, 4.5))
    failed = []
    for (name, seed), rows in accuracy.groupby(["variant", "seed"], sort=False):
        if rows.test_accuracy_pct.iloc[-1] < CHANCE_PCT:
            failed.append(f"{name}: {rows.test_accuracy_pct.iloc[-1]} % after epoch "
                          f"{rows.epoch.iloc[-1]}")
            continue
        ax.plot(rows.epoch, rows.test_accuracy_pct, marker="o", ls="-" if seed == 0 else ":",
                label=f"{name}, seed {seed} ({rows.train_images.iloc[0]} images)")
    ax.set_xlabel("epoch" + ("\n(not shown, did not learn: " + "; ".join(failed) + ")"
                             if failed else ""))
    ax.set_ylabel("test accuracy (%)")
    ax.set_xticks(sorted(accuracy.epoch.unique()))
    first = accuracy.iloc[0]
    ax.set_title(f"LeNet-5 on MNIST through the datapath model: the first N training images "
                 f"(legend), first {first.test_images} test images, batch 64", fontsize=9)
    ax.legend(fontsize=8)
    _save(fig, f"{stem}.png")


def plots(args) -> None:
    """One PNG per question, from the CSVs `accuracy` and `costs` wrote."""
    plt = _pyplot()
    buffers = pd.read_csv(RESULTS / "int32_buffer.csv")
    fig, axes = plt.subplots(len(WORKLOADS), 1, figsize=(12, 9))
    for ax, (model, rows) in zip(axes, buffers.groupby("model", sort=False)):
        labels = rows.layer + " " + rows.phase.str[:4]
        x = range(len(rows))
        ax.bar([i - 0.2 for i in x], rows.tensor_int32_words * 4 / 1e6, 0.4,
               label="whole-tensor exponent (SPEC)")
        ax.bar([i + 0.2 for i in x], rows.predicted_int32_words * 4 / 1e6, 0.4,
               label="predicted exponent")
        ax.axhline(DEFAULT.tensor_buffer_words * 4 / 1e6, color="k", lw=0.8, ls="--",
                   label=f"default tensor buffer ({DEFAULT.tensor_buffer_words * 4 // 1024} KiB)")
        ax.set_xticks(list(x), labels, rotation=90, fontsize=7)
        ax.set_ylabel("int32 buffer (MB)")
        batch = rows.batch.iloc[0]
        ax.set_title(f"{model}, {rows.input.iloc[0]}, batch {batch}", fontsize=9)
    axes[0].legend(fontsize=8)
    fig.suptitle("int32 tensor buffer each layer needs to take B over its whole output")
    _save(fig, "int32_buffer.png")

    for stem, runs in (("accuracy", full_accuracy_runs()),
                       ("accuracy_subset", pd.read_csv(RESULTS / "accuracy_subset_epochs.csv"))):
        accuracy_summary(runs).to_csv(RESULTS / f"{stem}_summary.csv", index=False)
        _accuracy_plot(plt, runs, stem)

    ratio = pd.read_csv(RESULTS / "int8_vs_fp32.csv")
    ratio = ratio[ratio.datapath != "int8 / fp32"]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, column, label in ((axes[0], "cycles", "cycles per step"),
                              (axes[1], "energy_mJ", "energy per step (mJ)")):
        wide = ratio.pivot(index="model", columns="datapath", values=column)
        wide.loc[list(WORKLOADS)].plot.bar(ax=ax, logy=True, rot=0)
        ax.set_ylabel(label)
        ax.set_xlabel("")
    fig.suptitle(f"One training step on the same {DEFAULT.name} array: NITI int8 against fp32")
    _save(fig, "int8_vs_fp32.png")

    arrays = pd.read_csv(RESULTS / "array_utilisation.csv")
    fig, ax = plt.subplots(figsize=(7, 4))
    for model, rows in arrays.groupby("model", sort=False):
        ax.plot(rows.array, rows.utilisation * 100, marker="o", label=model)
    ax.set_xlabel("array (rows x cols)")
    ax.set_ylabel("MAC utilisation over the step (%)")
    ax.set_title("Array size against utilisation (output stationary, default memories)",
                 fontsize=9)
    ax.legend()
    _save(fig, "array_utilisation.png")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="step", required=True)
    acc = sub.add_parser("accuracy", help="train LeNet-5 on MNIST per hardware variant")
    acc.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS),
                     metavar="NAME")
    acc.add_argument("--limit-train", type=int, default=60000)
    acc.add_argument("--limit-test", type=int, default=10000)
    acc.add_argument("--epochs", type=int, default=10)
    acc.add_argument("--seed", type=int, default=0)
    acc.add_argument("--keep", action="store_true", help="skip variants already in the CSV")
    acc.add_argument("--csv", default="accuracy_epochs.csv",
                     help="file name in the results (accuracy_epochs*.csv: runs split in parallel)")
    sub.add_parser("costs", help="cycles, bytes and energy per step from shapes alone")
    sub.add_parser("plots", help="the PNGs, from the CSVs of accuracy and costs")
    args = parser.parse_args(argv)
    if args.step == "accuracy":
        print(accuracy(args).to_string(index=False))
    elif args.step == "costs":
        for name, frame in costs(args).items():
            print(f"\n{name}\n{frame.to_string(index=False)}")
    else:
        plots(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
