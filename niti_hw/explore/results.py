"""One row per design point: its estimate, the synthesised area and clock of its size, the block
RAMs of its memories, and the accuracy of its numerics across seeds (mean, standard deviation,
count)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from niti_hw.explore.plan import Plan
from niti_hw.explore.space import Space, hardware_params
from niti_hw.params import HardwareParams
from niti_hw.perf.bram import memory_brams
from niti_hw.perf.clock import FMAX_COLUMN, REPORT, clock_mhz

REPORT_COLUMNS = ("unit", "size", "lanes", "ecp5_lut4", "ecp5_ff", "ecp5_dsp", "ecp5_bram",
                  FMAX_COLUMN, "seed")
ESTIMATE_COLUMNS = ("status", "reason", "macs", "cycles", "compute_cycles", "stall_cycles",
                    "utilisation", "energy_uj", "sram_mb", "dram_mb", "spill_mb")
AREA_COLUMNS = ("ecp5_lut4", "ecp5_ff", "ecp5_dsp", "ecp5_bram")
UNIT_MEMORIES = {"training_core": ("tensor",)}
"""The on-chip memories a synthesised unit holds itself (the top's tensor buffer), already in its
`ecp5_bram`; the systolic array holds none."""


def base_report(space: Space) -> pd.DataFrame:
    path = Path(space.synthesis.report) if space.synthesis.report else REPORT
    if not path.is_file():
        if space.synthesis.report:
            raise ValueError(f"[synthesis] report {path} does not exist")
        return pd.DataFrame(columns=list(REPORT_COLUMNS))
    return pd.read_csv(path)


def merged_report(base: pd.DataFrame, synth_rows: pd.DataFrame) -> pd.DataFrame:
    """The synthesis report with the study's own synthesised sizes appended."""
    ok = synth_rows[synth_rows["status"] == "ok"] if len(synth_rows) else synth_rows
    new = ok[[c for c in REPORT_COLUMNS if c in ok.columns]] if len(ok) else None
    return base if new is None else pd.concat([base, new], ignore_index=True)


def missing_sizes(report: pd.DataFrame, unit: str, sizes) -> list[str]:
    have = set(report.loc[report["unit"] == unit, "size"]) if len(report) else set()
    return [size for size in sizes if size not in have]


def area_table(report: pd.DataFrame, unit: str) -> pd.DataFrame:
    """Per size: the unit's area and its slowest Fmax over place-and-route seeds."""
    rows = report[(report["unit"] == unit)] if len(report) else report
    if not len(rows):
        return pd.DataFrame(columns=["size", *AREA_COLUMNS, "fmax_mhz"]).set_index("size")
    grouped = rows.groupby("size")
    table = grouped[list(AREA_COLUMNS)].first()
    table["fmax_mhz"] = grouped[FMAX_COLUMN].min()
    return table


def accuracy_summary(plan: Plan, runs: pd.DataFrame) -> pd.DataFrame:
    """Per accuracy group (numerics without the seed): mean, std and count of finished seeds."""
    ok = runs[runs["status"] == "ok"] if len(runs) else runs
    by_key = dict(zip(ok["key"], ok["accuracy_pct"])) if len(ok) else {}
    failed = set(runs.loc[runs["status"] == "failed", "key"]) if len(runs) else set()
    rows = []
    for group, base in plan.groups.items():
        keys = plan.runs_of[group]
        values = np.array([by_key[key] for key in keys if key in by_key], dtype=float)
        rows.append({"accuracy_group": group, "rounding": base["rounding"],
                     **{k: v for k, v in base["hardware"].items()},
                     "epochs": base["epochs"], "limit_train": base["limit_train"],
                     "accuracy_pct": values.mean() if len(values) else np.nan,
                     "accuracy_std": values.std(ddof=1) if len(values) > 1 else np.nan,
                     "accuracy_count": len(values),
                     "accuracy_failed": sum(key in failed for key in keys)})
    return pd.DataFrame(rows)


def join(space: Space, plan: Plan, estimates: pd.DataFrame, report: pd.DataFrame,
         report_path: Path, accuracy: pd.DataFrame | None) -> pd.DataFrame:
    designs = pd.DataFrame(plan.designs)
    metrics = estimates.drop(columns=[c for c in ("kind", "version", "config", "seconds")
                                      if c in estimates.columns])
    metrics = metrics.drop_duplicates("key", keep="last").rename(columns={"key": "estimate_key"})
    for name in ESTIMATE_COLUMNS:  # every point may have failed: the columns exist regardless
        if name not in metrics.columns:
            metrics[name] = np.nan
    out = designs.merge(metrics, on="estimate_key", how="left")
    out["status"] = out["status"].fillna("pending")
    out["reason"] = out["reason"].fillna("")
    out["clock_mhz"], out["clock_source"] = zip(*[_clock(row, report_path)
                                                   for row in out.to_dict("records")])
    out["time_ms"] = out["cycles"] / (out["clock_mhz"] * 1e3)
    out["edp_uj_ms"] = out["energy_uj"] * out["time_ms"]
    area = area_table(report, space.synthesis.unit)
    out = out.merge(area, left_on="size", right_index=True, how="left")
    brams = np.array([_brams(plan.estimates.get(key), space.synthesis.unit)
                      for key in out["estimate_key"]], dtype=float).reshape(-1, 2)
    out["memory_bram"] = brams[:, 0]
    out["total_bram"] = pd.to_numeric(out["ecp5_bram"], errors="coerce") + brams[:, 1]
    if accuracy is not None and len(accuracy):
        out = out.merge(accuracy[["accuracy_group", "accuracy_pct", "accuracy_std",
                                  "accuracy_count", "accuracy_failed"]],
                        on="accuracy_group", how="left")
    out.insert(0, "design", [f"d{i}" for i in range(len(out))])
    return out


def _brams(config: dict | None, unit: str) -> tuple[float, float]:
    """(DP16KD blocks of the point's memories, those of them outside the synthesised unit): the
    unit's own `ecp5_bram` plus the second is the design's block RAM. NaN for a point the
    hardware refuses."""
    if config is None:
        return np.nan, np.nan
    blocks = memory_brams(HardwareParams(**config["hardware"]))
    held = UNIT_MEMORIES.get(unit, ())
    return sum(blocks.values()), sum(n for name, n in blocks.items() if name not in held)


def _clock(row: dict, report_path: Path) -> tuple[float, str]:
    given = row.get("clock_mhz", "synth")
    if given != "synth":
        return float(given), "given"
    if row.get("size") is None or row.get("status") != "ok":
        return np.nan, ""
    point = {k: v for k, v in row.items() if k in ("array",)}
    try:
        return clock_mhz(hardware_params(point), report_path)
    except ValueError as error:
        return np.nan, str(error)

