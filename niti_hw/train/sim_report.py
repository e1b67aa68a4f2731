"""The `sim` backend's cycle and energy report: perf's costs of the step, and what the values did.

Cycles, bytes and energy depend on shapes only, so each batch size is lowered (`niti_hw.perf`, the
one lowering `niti-hw estimate` uses) and costed once. What depends on the values comes from the
datapath model: saturated accumulator outputs, values beyond a predicted exponent, and updates
skipped because the gradient was all zero (B = 0: the update's weight pass does not run, so its
cycles, bytes and energy are taken off in proportion).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pandas as pd

from ..atomic_write import atomic_write
from ..params import HardwareParams
from ..perf.clock import clock_mhz
from ..perf.cost import estimate
from ..perf.exponent import exponent_ops
from ..perf.lowering import PHASES, lower

COST_COLUMNS = ["macs", "cycles", "stall_cycles", "sram_bytes", "dram_bytes", "spill_bytes",
                "energy_pj"]
COUNT_COLUMNS = ["saturated", "beyond_exponent", "skipped_updates"]
REPORT_CSV, TOTALS_CSV, REPORT_PNG = "sim_report.csv", "sim_totals.csv", "sim_report.png"


def step_costs(spec, input_hwc, classes: int, batch: int, hardware: HardwareParams,
               weight_bits: int = 8) -> pd.DataFrame:
    """perf's estimate of one training step, one row per op, under the hardware's exponent flow."""
    h, w, c = input_hwc
    ops = exponent_ops(lower(spec, (c, h, w), batch, classes=classes, weight_bits=weight_bits),
                       hardware.exponent)
    table = estimate(ops, hardware, weight_bits=weight_bits)
    table["sram_bytes"] = table.sram_read_bytes + table.sram_write_bytes
    table["dram_bytes"] = table.dram_read_bytes + table.dram_write_bytes
    return table


def weighted_layer_names(table: pd.DataFrame) -> list[str]:
    """perf's names of the weighted layers (conv1, fc1, ...) in network order."""
    forward = table[(table.op == "gemm") & (table.phase == "forward")]
    return list(dict.fromkeys(forward.layer))


def epoch_report(costs: dict[int, pd.DataFrame], steps: Counter, stats: dict,
                 hardware: HardwareParams) -> pd.DataFrame:
    """One row per (layer, phase): costs summed over the epoch's steps, counts the values gave."""
    parts = []
    for batch, count in steps.items():
        table = costs[batch].copy()
        table[COST_COLUMNS] = table[COST_COLUMNS] * count
        parts.append(table)
    ops = pd.concat(parts, ignore_index=True)
    names = weighted_layer_names(costs[next(iter(costs))])
    counts = {(names[layer], phase): s for (layer, phase), s in stats.items() if layer is not None}
    skipped = {}
    for (layer, phase), s in counts.items():
        if phase == "update" and s.updates:
            skipped[layer] = s.skipped_updates / s.updates
    for layer, fraction in skipped.items():  # a skipped update's weight pass does not run
        rows = (ops.layer == layer) & (ops.op == "weight_update")
        ops.loc[rows, COST_COLUMNS] = ops.loc[rows, COST_COLUMNS] * (1 - fraction)
    report = ops.groupby(["layer", "phase"], sort=False)[COST_COLUMNS].sum()
    report["utilisation"] = report.macs / (hardware.rows * hardware.cols * report.cycles)
    for column in COUNT_COLUMNS:
        report[column] = [getattr(counts.get(key), column, 0) if key in counts else 0
                          for key in report.index]
    return report.reset_index()


def phase_totals(report: pd.DataFrame, steps: int, hardware: HardwareParams) -> pd.DataFrame:
    """Totals per phase, per step (the epoch's mean) and per epoch, with time at the array clock."""
    by_phase = report.groupby("phase")[COST_COLUMNS + COUNT_COLUMNS].sum()
    by_phase = by_phase.reindex([p for p in PHASES if p in by_phase.index])
    epoch = by_phase.sum().to_frame("epoch").T
    step = epoch[COST_COLUMNS] / steps
    table = pd.concat([by_phase, step.rename(index={"epoch": "step"}), epoch])
    mhz, _ = clock_mhz(hardware)
    table["utilisation"] = table.macs / (hardware.rows * hardware.cols * table.cycles)
    table["time_ms"] = table.cycles / (mhz * 1e3)
    table.index.name = "phase"
    return table


def write(report: pd.DataFrame, totals: pd.DataFrame, epoch: int, out_dir: Path) -> None:
    """Append this epoch's rows to the CSVs (rewritten whole, atomically) and redraw the plot."""
    for name, frame in ((REPORT_CSV, report), (TOTALS_CSV, totals.reset_index())):
        path = Path(out_dir) / name
        frame = frame.assign(epoch=epoch)[["epoch", *frame.columns]]
        if path.exists():
            earlier = pd.read_csv(path)
            frame = pd.concat([earlier[earlier.epoch < epoch], frame], ignore_index=True)
        with atomic_write(path) as tmp:
            frame.to_csv(tmp, index=False)
    plot(report, Path(out_dir) / REPORT_PNG, f"epoch {epoch + 1}")


def plot(report: pd.DataFrame, path: Path, title: str) -> None:
    """Stacked bars per layer, one colour per phase: cycles and energy of the epoch."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, column, label in ((axes[0], "cycles", "cycles (millions)"),
                              (axes[1], "energy_pj", "energy (mJ)")):
        scale = 1e6 if column == "cycles" else 1e9
        wide = report.pivot_table(index="layer", columns="phase", values=column, aggfunc="sum",
                                  sort=False).fillna(0) / scale
        wide = wide[[p for p in PHASES if p in wide.columns]]
        wide.plot.bar(stacked=True, ax=ax, width=0.8)
        ax.set_ylabel(label)
        ax.set_xlabel("")
    fig.suptitle(f"NITI training on the datapath model, {title}: where cycles and energy go")
    fig.tight_layout()
    with atomic_write(path) as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)


def text(report: pd.DataFrame, totals: pd.DataFrame, hardware: HardwareParams) -> str:
    """The report as the terminal shows it at the end of training."""
    mhz, source = clock_mhz(hardware)
    shown = report.assign(sram_MB=report.sram_bytes / 1e6, dram_MB=report.dram_bytes / 1e6,
                          energy_uJ=report.energy_pj / 1e6)
    shown = shown[["layer", "phase", "macs", "cycles", "utilisation", "sram_MB", "dram_MB",
                   "energy_uJ", *COUNT_COLUMNS]]
    total = totals.assign(dram_MB=totals.dram_bytes / 1e6, energy_uJ=totals.energy_pj / 1e6)
    total = total[["macs", "cycles", "utilisation", "time_ms", "dram_MB", "energy_uJ"]]
    head = (f"Datapath model: {hardware.name} array, {hardware.acc_bits}-bit accumulator, "
            f"{hardware.exponent} exponent, {mhz:g} MHz ({source}); last epoch, per layer "
            "and phase")
    return "\n".join([head, _format(shown), "", "Totals per phase, per step and per epoch",
                      _format(total.reset_index())])


def _format(frame: pd.DataFrame) -> str:
    def cell(value):
        if isinstance(value, float):
            return f"{value:,.0f}" if abs(value) >= 100 or value.is_integer() else f"{value:.3f}"
        return f"{value:,}" if isinstance(value, int) else str(value)

    return frame.to_string(index=False, formatters={c: cell for c in frame.columns})
