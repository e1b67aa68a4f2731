"""Energy per action, in picojoules: defaults from Horowitz (ISSCC 2014), overridable by a TOML file.

Defaults are the 45 nm, 0.9 V figures of M. Horowitz, "Computing's energy problem (and what we can
do about it)", ISSCC 2014, used as published (no technology scaling):
- int8 MAC = 8-bit integer multiply 0.2 pJ + 32-bit integer add 0.1 pJ = 0.3 pJ;
- fp32 MAC = 32-bit float multiply 3.7 pJ + 32-bit float add 0.9 pJ = 4.6 pJ;
- int32 ALU operation (add, compare, shift of the post-processing units) = 32-bit add, 0.1 pJ;
- SRAM per byte = the per-64-bit read energy / 8 at three sizes: 8 KB 10 pJ -> 1.25 pJ/B, 32 KB
  20 pJ -> 2.5 pJ/B, 1 MB 100 pJ -> 12.5 pJ/B. Between and beyond them energy follows capacity as a
  power law fitted piecewise through those points (`sram_pj_per_byte`: straight lines in log-log,
  the way CACTI's access energy grows with capacity, roughly with its square root): slope 0.5
  below 32 KiB, log(5)/log(32) = 0.464 above it, extended past 1 MiB and below 8 KiB with the
  nearest segment's slope, so a sweep over SRAM sizes sees a smooth cost rather than three steps.
  Writes are taken equal to reads (the paper gives reads);
- DRAM per byte = 1.3 nJ per 64 bits / 8 = 162.5 pJ/B (the low end of the paper's 1.3-2.6 nJ);
- register file per byte: not in the paper's table; 1/6 of the 8 KB SRAM figure (0.208 pJ/B),
  after the register-file-to-buffer ratio of Eyeriss (Chen et al., ISCA 2016). Each MAC moves its
  two operands through the PE's pipeline registers.

A TOML file (`[energy_pj]` table, one number per action) replaces the whole table: every action must
be given and unknown ones are refused, so a file never silently mixes with the defaults.
`default_toml()` prints the defaults in that form.
"""

from __future__ import annotations

import math
import tomllib
from pathlib import Path

import numpy as np

SRAM_SIZES_KIB = (8, 32, 1024)

DEFAULT_PJ: dict[str, float] = {
    "int8_mac": 0.2 + 0.1,
    "fp32_mac": 3.7 + 0.9,
    "int32_alu": 0.1,
    "register_byte": 10.0 / 8 / 6,
    **{f"sram_{op}_{size}kib_byte": pj / 8
       for size, pj in zip(SRAM_SIZES_KIB, (10.0, 20.0, 100.0)) for op in ("read", "write")},
    "dram_read_byte": 1300.0 / 8,
    "dram_write_byte": 1300.0 / 8,
}
ACTIONS = tuple(DEFAULT_PJ)
TABLE = "energy_pj"


def sram_pj_per_byte(pj: dict[str, float], size_kib: float) -> tuple[float, float]:
    """(read, write) pJ per byte of an SRAM of `size_kib`: log-log interpolation between the table's
    size points, the nearest segment extended outside them."""
    sizes = np.log(np.array(SRAM_SIZES_KIB, dtype=float))
    x = math.log(size_kib)
    segment = int(np.clip(np.searchsorted(sizes, x) - 1, 0, len(sizes) - 2))
    x0, x1 = sizes[segment], sizes[segment + 1]

    def along(op: str) -> float:
        y0 = math.log(pj[f"sram_{op}_{SRAM_SIZES_KIB[segment]}kib_byte"])
        y1 = math.log(pj[f"sram_{op}_{SRAM_SIZES_KIB[segment + 1]}kib_byte"])
        return math.exp(y0 + (y1 - y0) * (x - x0) / (x1 - x0))

    return along("read"), along("write")


def load_energy(path) -> dict[str, float]:
    """Read a TOML energy table; refuse unknown or missing actions and non-numbers, by name."""
    path = Path(path)
    try:
        document = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ValueError(f"energy file {path} not found; write one with `niti-hw estimate "
                         f"--energy-defaults > energy.toml`") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"energy file {path} is not valid TOML: {error}") from None
    if set(document) != {TABLE} or not isinstance(document[TABLE], dict):
        raise ValueError(f"energy file {path} must hold exactly one [{TABLE}] table; "
                         f"got {sorted(document) or 'nothing'}")
    return check_energy(document[TABLE], str(path))


def check_energy(table: dict, origin: str = "energy table") -> dict[str, float]:
    unknown = sorted(set(table) - set(ACTIONS))
    missing = [a for a in ACTIONS if a not in table]
    if unknown:
        raise ValueError(f"{origin}: unknown action(s) {', '.join(unknown)}; valid actions: "
                         f"{', '.join(ACTIONS)}")
    if missing:
        raise ValueError(f"{origin}: missing action(s) {', '.join(missing)}; every action needs "
                         f"a pJ value (see `niti-hw estimate --energy-defaults`)")
    for action, value in table.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) \
                or not math.isfinite(value) or value < 0:
            raise ValueError(f"{origin}: {action} must be a finite number of pJ >= 0; got {value!r}")
        if action.startswith("sram_") and value == 0:
            raise ValueError(f"{origin}: {action} must be > 0 pJ (SRAM energy is interpolated "
                             f"between sizes on a log scale); got 0")
    return {action: float(table[action]) for action in ACTIONS}


def default_toml() -> str:
    lines = ["# Energy per action in pJ (Horowitz, ISSCC 2014, 45 nm; see niti_hw/perf/energy.py)",
             f"[{TABLE}]"]
    lines += [f"{action} = {value!r}" for action, value in DEFAULT_PJ.items()]
    return "\n".join(lines) + "\n"
