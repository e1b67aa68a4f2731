"""Co-design study of a NITI training accelerator: what each hardware choice costs and what it does
to accuracy. Tables (CSV) and plots (PNG) go to sw/results/codesign/.

    niti-hw explore sw/spaces/codesign.toml --out studies/codesign   # accuracy, 3 seeds (hours)
    python sw/codesign.py seeds --add-study studies/codesign   # seeds.csv, mean +- sd per variant
    python sw/codesign.py costs      # cycles, bytes, energy from shapes alone (seconds)
    python sw/codesign.py plots      # the plots, from the CSVs of the steps above

Accuracy runs are points of an `explore` study: LeNet-5 on MNIST per hardware variant
(accumulator width 16/20/24/32 bits, per-tile and predicted exponents, with and without
headroom) on the `sim` backend, each seed a point that survives a crash. `seeds` appends the
finished runs of study folders to `seeds.csv` (one row per variant and seed) and summarises
them: mean, standard deviation and range per variant, and whether a variant's seeds all lie
outside the baseline's range. The per-epoch CSVs `accuracy_epochs*.csv` are the earlier
single-seed runs (seed 0, with the counts of saturated and beyond-exponent values per epoch)
and `accuracy_subset_*` the subset study; both stay as recorded.
`costs` lowers LeNet-5 (MNIST), VGG-small-7 and VGG16 (CIFAR-10 shapes) with niti_hw.perf.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from pathlib import Path

import pandas as pd

from niti_hw.atomic_write import atomic_write
from niti_hw.explore.store import Store
from niti_hw.params import DEFAULT, EXPONENTS
from niti_hw.perf.clock import clock_mhz
from niti_hw.perf.cost import estimate
from niti_hw.perf.exponent import exponent_ops, int32_buffer_words
from niti_hw.perf.lowering import lower

RESULTS = Path(__file__).resolve().parent / "results" / "codesign"

BASELINE = "int32 tensor exponent"
SEEDS_CSV = RESULTS / "seeds.csv"
DID_NOT_LEARN = r"did not learn: ([\d.]+) % test accuracy after epoch (\d+)"
"""The reason `explore` records for a run stopped at chance (`stop_at_chance_after`)."""


def variant_name(hardware: dict) -> str:
    """The seeds.csv name of an accuracy point's hardware (`explore`'s accuracy config)."""
    if hardware.get("acc_bits", 32) != 32:
        return f"accumulator {hardware['acc_bits']} bits"
    if hardware.get("exponent") == "tile":
        return f"per-tile exponent {hardware['rows']}x{hardware['cols']}"
    if hardware.get("exponent") == "predicted":
        headroom = hardware.get("exponent_headroom", 0)
        return "predicted exponent" + (f", {headroom} bit headroom" if headroom else "")
    return BASELINE


def study_seeds(folder: Path) -> pd.DataFrame:
    """Finished accuracy points of an explore study folder, as seeds.csv rows (it may be running:
    its stored files are read, its lock is left alone)."""
    runs = Store(folder).read("accuracy")
    rows = []
    for run in runs.itertuples():
        config = json.loads(run.config)
        stopped = re.match(DID_NOT_LEARN, str(run.reason))
        if run.status == "ok":
            epochs, final = config["epochs"], run.accuracy_pct
        elif stopped:
            epochs, final = int(stopped.group(2)), float(stopped.group(1))
        else:
            continue  # a run that failed for another reason has no accuracy to record
        rows.append({"variant": variant_name(config["hardware"]), "seed": config["seed"],
                     "epochs": epochs, "final_pct": final,
                     "source": f"niti-hw explore (study {folder.name})"})
    return pd.DataFrame(rows, columns=["variant", "seed", "epochs", "final_pct", "source"])


def seeds(args) -> pd.DataFrame:
    """seeds.csv with the studies' runs added (a variant and seed already there is kept), and its
    summary per variant."""
    table = pd.read_csv(SEEDS_CSV)
    for folder in args.add_study:
        new = study_seeds(Path(folder))
        known = set(zip(table.variant, table.seed))
        new = new[[(v, s) not in known for v, s in zip(new.variant, new.seed)]]
        table = pd.concat([table, new], ignore_index=True)
    with atomic_write(SEEDS_CSV) as tmp:
        table.to_csv(tmp, index=False)
    summary = seed_summary(table)
    with atomic_write(RESULTS / "seeds_summary.csv") as tmp:
        summary.to_csv(tmp, index=False)
    return summary


def seed_summary(table: pd.DataFrame) -> pd.DataFrame:
    """Mean, standard deviation (n - 1), range and count per variant; the difference from the
    baseline's mean, and whether every seed of the variant lies outside the baseline's range
    (with three seeds each, the test the README's findings use)."""
    grouped = table.groupby("variant", sort=False).final_pct
    summary = grouped.agg(seeds="count", mean_pct="mean", sd_pct="std", min_pct="min",
                          max_pct="max").reset_index()
    base = summary.set_index("variant").loc[BASELINE]
    summary["vs_baseline"] = summary.mean_pct - base.mean_pct
    summary["outside_baseline_range"] = [
        bool(row.max_pct < base.min_pct or row.min_pct > base.max_pct)
        for row in summary.itertuples()]
    return summary.round({"mean_pct": 2, "sd_pct": 2, "vs_baseline": 2})


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


def _seeds_plot(plt, table: pd.DataFrame) -> None:
    """Final accuracy per variant: every seed, and the mean with one standard deviation."""
    learned = table[table.final_pct >= CHANCE_PCT]
    summary = seed_summary(learned)
    fig, ax = plt.subplots(figsize=(8, 4))
    for y, row in enumerate(summary.itertuples()):
        runs = learned[learned.variant == row.variant].final_pct
        ax.scatter(runs, [y] * len(runs), s=14, color="0.5", zorder=2)
        ax.errorbar(row.mean_pct, y, xerr=0 if math.isnan(row.sd_pct) else row.sd_pct,
                    fmt="o", color="C0", capsize=4, zorder=3)
    base = summary.set_index("variant").loc[BASELINE]
    ax.axvspan(base.min_pct, base.max_pct, color="C0", alpha=0.12, label="baseline's seed range")
    ax.set_yticks(range(len(summary)), [f"{v} (n = {n})" for v, n in
                                        zip(summary.variant, summary.seeds)], fontsize=8)
    failed = sorted(set(table.variant) - set(learned.variant))
    ax.set_xlabel("final test accuracy (%), LeNet-5, full MNIST, 10 epochs; mean +- sd, seeds grey"
                  + (f"\n(not shown, did not learn: {', '.join(failed)})" if failed else ""))
    ax.legend(fontsize=8)
    _save(fig, "seeds.png")


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

    _seeds_plot(plt, pd.read_csv(SEEDS_CSV))

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
    add = sub.add_parser("seeds", help="seeds.csv from explore studies, and its summary")
    add.add_argument("--add-study", nargs="*", default=[], metavar="DIR",
                     help="explore study folders whose finished accuracy runs to add")
    sub.add_parser("costs", help="cycles, bytes and energy per step from shapes alone")
    sub.add_parser("plots", help="the PNGs, from the CSVs of seeds, accuracy and costs")
    args = parser.parse_args(argv)
    if args.step == "seeds":
        print(seeds(args).to_string(index=False))
    elif args.step == "costs":
        for name, frame in costs(args).items():
            print(f"\n{name}\n{frame.to_string(index=False)}")
    else:
        plots(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
