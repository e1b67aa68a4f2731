"""The array clock: `params.clock_mhz` when given, else the Fmax the synthesis report measured.

The report is `rtl/synth_report.csv` at the repository root (written by `niti-hw synth`). An array
size the report does not hold takes the Fmax of the largest array synthesised (the closest to what
is routed; larger arrays are likely slower, so give `clock_mhz` for a real design).
"""

from __future__ import annotations

import csv
from pathlib import Path

from niti_hw.params import HardwareParams

REPORT = Path(__file__).resolve().parents[2] / "rtl" / "synth_report.csv"
FMAX_COLUMN = "ecp5_fmax_mhz"


def clock_mhz(params: HardwareParams, report: Path = REPORT) -> tuple[float, str]:
    """(MHz, where it came from)."""
    if params.clock_mhz is not None:
        return float(params.clock_mhz), "given"
    if not report.is_file():
        raise ValueError(f"no synthesis report at {report} to take the clock from; give the clock "
                         "with --clock-mhz (e.g. --clock-mhz 150)")
    with report.open(newline="") as handle:
        arrays = [row for row in csv.DictReader(handle) if row["unit"] == "systolic_array"]
    if not arrays:
        raise ValueError(f"{report} has no systolic_array row; give the clock with --clock-mhz")
    for row in arrays:
        if row["size"] == params.name:
            return float(row[FMAX_COLUMN]), f"{report.name} systolic_array {row['size']}"
    largest = max(arrays, key=lambda row: _pes(row["size"]))
    return float(largest[FMAX_COLUMN]), (f"{report.name} systolic_array {largest['size']} "
                                         f"(largest synthesised; {params.name} not in the report)")


def _pes(size: str) -> int:
    rows, cols = size.split("x")
    return int(rows) * int(cols)
