"""The clock: `params.clock_mhz` when given, else the Fmax the synthesis report measured.

The report is `rtl/synth_report.csv` at the repository root (written by `niti-hw synth`). A size's
clock is that of the top (`training_core`, the design that runs a training step) where the report
holds it, else the array's; of several place-and-route seeds, the slowest (one every measured
placement meets). A size the report does not hold takes the clock of the largest size synthesised
(the closest to what is routed; larger designs are likely slower, so give `clock_mhz` for a real
design).
"""

from __future__ import annotations

import csv
from pathlib import Path

from niti_hw.params import HardwareParams

REPORT = Path(__file__).resolve().parents[2] / "rtl" / "synth_report.csv"
FMAX_COLUMN = "ecp5_fmax_mhz"
UNITS = ("training_core", "systolic_array")  # whose clock a size takes, in this order
CORE_UNITS = ("core",)
"""The NITI core that runs compiled programs (`niti-hw compile`): its own clock, no fallback."""


def clock_mhz(params: HardwareParams, report: Path = REPORT,
              units: tuple[str, ...] = UNITS) -> tuple[float, str]:
    """(MHz, where it came from), from the first of `units` the report holds at the size."""
    if params.clock_mhz is not None:
        return float(params.clock_mhz), "given"
    if not report.is_file():
        raise ValueError(f"no synthesis report at {report} to take the clock from; give the clock "
                         "with --clock-mhz (e.g. --clock-mhz 150)")
    with report.open(newline="") as handle:
        rows = [row for row in csv.DictReader(handle)
                if row["unit"] in units and row[FMAX_COLUMN]]  # a --no-pnr row has no Fmax
    if not rows:
        raise ValueError(f"{report} has no {' or '.join(units)} row; give the clock with "
                         "--clock-mhz")
    size, note = params.name, ""
    if size not in {row["size"] for row in rows}:
        size = max((row["size"] for row in rows), key=_pes)
        note = f"; largest synthesised, {params.name} not in the report"
    unit = next(unit for unit in units if any(row["unit"] == unit and row["size"] == size
                                               for row in rows))
    seeds = [float(row[FMAX_COLUMN]) for row in rows if row["unit"] == unit and row["size"] == size]
    slowest = f", slowest of {len(seeds)} seeds" if len(seeds) > 1 else ""
    return min(seeds), f"{report.name} {unit} {size}{slowest}{note}"


def _pes(size: str) -> int:
    rows, cols = size.split("x")
    return int(rows) * int(cols)
