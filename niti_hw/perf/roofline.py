"""The roofline of the array: attained MACs per cycle against operational intensity (MACs per DRAM
byte) for every GEMM of a step, under each mapping costed, with the two roofs: the array's peak
(rows x cols MACs per cycle) and the DRAM bandwidth (bytes per cycle x intensity)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from niti_hw.atomic_write import atomic_write
from niti_hw.params import HardwareParams

PHASE_MARKERS = {"forward": "o", "error": "s", "gradient": "^"}


def roofline_points(table: pd.DataFrame) -> pd.DataFrame:
    """One point per GEMM row: intensity (MACs per DRAM byte) and attained MACs per cycle."""
    gemms = table[table["op"] == "gemm"]
    dram = gemms["dram_read_bytes"] + gemms["dram_write_bytes"]
    return pd.DataFrame({
        "layer": gemms["layer"], "phase": gemms["phase"], "mapping": gemms["mapping"],
        "intensity": gemms["macs"] / dram.where(dram > 0),
        "macs_per_cycle": gemms["macs"] / gemms["cycles"],
    }).dropna()


def plot_roofline(tables: dict[str, pd.DataFrame], params: HardwareParams, title: str,
                  path: Path) -> None:
    """Write the roofline with one series per entry of `tables` (e.g. "rtl", "best") to `path`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    peak = params.rows * params.cols
    points = {name: roofline_points(table) for name, table in tables.items()}
    everything = pd.concat(points.values())
    low = max(min(everything["intensity"].min(), peak / params.dram_bytes_per_cycle) / 4, 1e-3)
    high = max(everything["intensity"].max(), peak / params.dram_bytes_per_cycle) * 4
    x = np.geomspace(low, high, 200)
    fig, ax = plt.subplots(figsize=(7.5, 5))
    ax.plot(x, np.minimum(peak, params.dram_bytes_per_cycle * x), color="black", lw=1.5,
            label=f"roof: {peak} MAC/cycle, {params.dram_bytes_per_cycle:g} B/cycle")
    for (name, frame), colour in zip(points.items(), ("tab:red", "tab:blue", "tab:green")):
        for phase, marker in PHASE_MARKERS.items():
            part = frame[frame["phase"] == phase]
            if len(part):
                ax.scatter(part["intensity"], part["macs_per_cycle"], marker=marker, s=28,
                           color=colour, alpha=0.75, label=f"{name}, {phase}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("operational intensity (MACs per DRAM byte)")
    ax.set_ylabel("attained MACs per cycle")
    ax.set_title(title, fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    with atomic_write(path) as tmp:
        fig.savefig(tmp, dpi=120)
    plt.close(fig)
