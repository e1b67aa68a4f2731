"""A design space, read from TOML and checked before any work starts; its points, by grid or random.

Every mistake is one ValueError line naming the file, the table and the key: an unknown axis, an
empty axis, a value the hardware cannot have (checked by `HardwareParams` itself), a constraint or
objective on a metric no task produces.
"""

from __future__ import annotations

import itertools
import math
import random
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from niti_hw.explore.tasks import COST_KEYWORDS
from niti_hw.golden import ROUNDING_MODES
from niti_hw.models import MODELS
from niti_hw.params import DEFAULT, HardwareParams
from niti_hw.perf.cost import MAPPINGS
from niti_hw.perf.search import OBJECTIVES as COST_OBJECTIVES

DATAFLOWS = {"os": "output_stationary", "ws": "weight_stationary", "is": "input_stationary"}
SAMPLERS = ("grid", "random", "optuna")

AXES = ("array", "dataflow", "lanes", "acc_bits", "sram_kib", "ifmap_sram_kib", "filter_sram_kib",
        "ofmap_sram_kib", "tensor_buffer_words", "dram_bytes_per_cycle", "exponent",
        "exponent_headroom", "clock_mhz", "mapping", "objective", "fused", "keep_on_chip")
"""[hardware] keys; each is one value or a list of values (an axis). `sram_kib` sets all three
SRAMs at once; `clock_mhz` is a number or "synth" (the synthesis report's Fmax of the size);
`mapping`, `objective`, `fused` and `keep_on_chip` (`niti-hw estimate --mapping/--objective/--fuse/
--keep-on-chip`) are passed to the cost model only when the space names them."""
ESTIMATE_ONLY = COST_KEYWORDS
DEFAULT_AXES = {"array": (DEFAULT.name,), "clock_mhz": ("synth",)}

ESTIMATE_METRICS = ("macs", "cycles", "compute_cycles", "stall_cycles", "utilisation",
                    "energy_uj", "sram_mb", "dram_mb", "spill_mb", "time_ms", "edp_uj_ms")
AREA_METRICS = ("ecp5_lut4", "ecp5_ff", "ecp5_dsp", "ecp5_bram", "memory_bram", "total_bram",
                "fmax_mhz", "clock_mhz")
"""The synthesised unit's area and clock at the point's size; `memory_bram`: the DP16KD blocks
the point's SRAMs and tensor buffer take (`niti_hw.perf.bram`); `total_bram`: the design's, the
unit's own and those of the memories outside it (the LFE5U-45F has 108, `ECP5_45F_BRAMS`)."""
ACCURACY_METRICS = ("accuracy_pct", "accuracy_std", "accuracy_count")
METRICS = ESTIMATE_METRICS + AREA_METRICS + ACCURACY_METRICS
"""Columns of the joined results an objective or constraint may name."""

TABLES = ("study", "hardware", "workload", "numerics", "synthesis", "objectives", "point")
CONSTRAINT = re.compile(r"\s*([A-Za-z_0-9]+)\s*(<=|>=|<|>|==)\s*(-?[0-9.eE+-]+)\s*")


@dataclass(frozen=True)
class Workload:
    model: str
    input: tuple[int, int, int]
    batch: int

    @property
    def name(self) -> str:
        return f"{self.model} {'x'.join(map(str, self.input))} b{self.batch}"

    def to_dict(self) -> dict:
        return {"model": self.model, "input": list(self.input), "batch": self.batch}


@dataclass(frozen=True)
class Numerics:
    """Training runs on the sim backend: one per accuracy configuration, rounding mode and seed."""

    model: str = "lenet5"
    dataset: str = "mnist"
    epochs: int = 1
    seeds: tuple[int, ...] = (0,)
    rounding: tuple[str, ...] = ("pseudo",)
    batch_size: int = 64
    limit_train: int | None = None
    limit_test: int | None = None
    stop_at_chance_after: int | None = None
    """Epochs after which a run still at chance (test accuracy below twice 1 / classes) stops and
    is recorded as failed: a variant that does not learn costs two epochs, not ten."""


@dataclass(frozen=True)
class Synthesis:
    """Sizes missing from the synthesis report are synthesised (minutes each) when `run_missing`."""

    run_missing: bool = False
    unit: str = "systolic_array"
    report: str | None = None  # None: the repository's rtl/synth_report.csv


@dataclass(frozen=True)
class Constraint:
    metric: str
    op: str
    value: float

    @property
    def text(self) -> str:
        return f"{self.metric} {self.op} {self.value:g}"

    def holds(self, values):
        """Element-wise on a pandas Series; a missing value never holds."""
        return {"<=": values <= self.value, ">=": values >= self.value, "<": values < self.value,
                ">": values > self.value, "==": values == self.value}[self.op]


@dataclass(frozen=True)
class Space:
    path: Path
    name: str
    axes: dict[str, tuple]
    workloads: tuple[Workload, ...]
    numerics: Numerics | None = None
    synthesis: Synthesis = Synthesis()
    minimise: tuple[str, ...] = ("energy_uj", "time_ms")
    maximise: tuple[str, ...] = ()
    constraints: tuple[Constraint, ...] = ()
    sampler: str = "grid"
    samples: int | None = None
    seed: int = 0
    chunk: int = 100
    named: frozenset = field(default_factory=frozenset)  # hardware keys the file gave
    listed: tuple[dict, ...] = ()  # [[point]] tables: these points instead of a grid

    @property
    def objectives(self) -> list[tuple[str, str]]:
        return [(m, "min") for m in self.minimise] + [(m, "max") for m in self.maximise]

    @property
    def grid_size(self) -> int:
        return math.prod(len(values) for values in self.axes.values())

    def points(self) -> list[dict]:
        """Hardware points (axis -> value): the whole grid, or `samples` of it drawn at random
        with `seed`. A headroom other than 0 is kept for the predicted exponent only."""
        names = list(self.axes)
        if self.listed:  # each listed point over the [hardware] grid of what it does not set
            combos = (tuple(point.get(n, v) for n, v in zip(names, combo)) for point in self.listed
                      for combo in itertools.product(*(self.axes[n] for n in names)))
        elif self.sampler == "grid":
            combos = itertools.product(*(self.axes[n] for n in names))
        else:
            total = self.grid_size
            picked = random.Random(self.seed).sample(range(total), min(self.samples, total))
            combos = (self._combo(index, names) for index in picked)
        seen, out = set(), []
        for combo in combos:
            point = dict(zip(names, combo))
            if "exponent_headroom" in point and point.get("exponent",
                                                          DEFAULT.exponent) != "predicted":
                point["exponent_headroom"] = 0
            frozen = tuple(sorted(point.items()))
            if frozen not in seen:
                seen.add(frozen)
                out.append(point)
        return out

    def _combo(self, index: int, names: list[str]) -> tuple:
        values = []
        for name in reversed(names):
            index, digit = divmod(index, len(self.axes[name]))
            values.append(self.axes[name][digit])
        return tuple(reversed(values))


def parse_array(value) -> tuple[int, int]:
    """'16x8' -> (16, 8); 16 -> (16, 16)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value, value
    match = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", str(value))
    if not match:
        raise ValueError(f"expected ROWSxCOLS such as \"16x16\"; got {value!r}")
    return int(match.group(1)), int(match.group(2))


def hardware_params(point: dict) -> HardwareParams:
    """The HardwareParams of a hardware point (lanes as `niti-hw estimate` picks them)."""
    rows, cols = parse_array(point.get("array", DEFAULT.name))
    changes = {k: v for k, v in point.items() if k in HardwareParams.__dataclass_fields__}
    changes.pop("clock_mhz", None)
    changes.setdefault("lanes", math.gcd(cols, DEFAULT.lfsr_lanes))
    if "dataflow" in changes:
        changes["dataflow"] = DATAFLOWS.get(changes["dataflow"], changes["dataflow"])
    if "sram_kib" in point:
        for name in ("ifmap_sram_kib", "filter_sram_kib", "ofmap_sram_kib"):
            changes[name] = point["sram_kib"]
    return DEFAULT.replace(rows=rows, cols=cols, **changes)


def load_space(path: Path) -> Space:
    path = Path(path)
    try:
        document = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ValueError(f"no space file {path}") from None
    except tomllib.TOMLDecodeError as error:
        raise ValueError(f"{path.name} is not valid TOML: {error}") from None
    try:
        return _space(path, document)
    except _Bad as error:
        raise ValueError(f"{path.name}: {error}") from None


class _Bad(ValueError):
    pass


def _space(path: Path, doc: dict) -> Space:
    unknown = sorted(set(doc) - set(TABLES))
    if unknown:
        raise _Bad(f"unknown table [{unknown[0]}]; tables: {', '.join(TABLES)}")
    study = _table(doc, "study", ("name", "sampler", "samples", "seed", "chunk"))
    hardware = _table(doc, "hardware", AXES)
    axes = {name: _axis(name, value) for name, value in hardware.items()}
    if "sram_kib" in axes and any(n in axes for n in ("ifmap_sram_kib", "filter_sram_kib",
                                                      "ofmap_sram_kib")):
        raise _Bad("[hardware] sram_kib sets all three SRAMs; give it or the three *_sram_kib "
                   "axes, not both")
    for name, values in DEFAULT_AXES.items():
        axes.setdefault(name, values)
    for name, values in axes.items():
        for value in values:
            _check_value(name, value)
    sampler = study.get("sampler", "grid")
    if sampler not in SAMPLERS:
        raise _Bad(f"[study] sampler must be one of {', '.join(SAMPLERS)}; got {sampler!r}")
    samples = study.get("samples")
    if sampler != "grid" and (not isinstance(samples, int) or samples < 1):
        raise _Bad(f"[study] sampler {sampler!r} needs samples = a positive integer; "
                   f"got {samples!r}")
    objectives = _table(doc, "objectives", ("minimise", "maximise", "constraints"))
    space = Space(
        path=path, name=str(study.get("name", path.stem)), axes=axes,
        workloads=_workloads(doc.get("workload")), numerics=_numerics(doc.get("numerics")),
        synthesis=_synthesis(doc.get("synthesis")),
        minimise=_metrics(objectives, "minimise", ("energy_uj", "time_ms")),
        maximise=_metrics(objectives, "maximise", ()),
        constraints=tuple(_constraint(text) for text in _list(objectives, "constraints")),
        sampler=sampler, samples=samples, seed=_int(study, "seed", 0, 0),
        listed=_listed(doc.get("point"), axes),
        chunk=_int(study, "chunk", 100, 1),
        named=frozenset(hardware) | {k for p in doc.get("point", []) for k in p})
    if not space.minimise and not space.maximise:
        raise _Bad("[objectives] names no metric; give minimise = [...] or maximise = [...]")
    if sampler == "optuna":
        uses = [m for m in space.minimise + space.maximise if m in ACCURACY_METRICS]
        if uses:
            raise _Bad(f"[objectives] {uses[0]}: the optuna sampler steers by estimates and area "
                       "only (accuracy runs take minutes); use grid or random, or a constraint")
    if space.numerics is None:
        needs = [m for m in space.minimise + space.maximise + tuple(c.metric for c in
                 space.constraints) if m in ACCURACY_METRICS]
        if needs:
            raise _Bad(f"[objectives] uses {needs[0]}, which needs a [numerics] table (the "
                       "training runs that measure accuracy)")
    return space


def _listed(items, axes: dict) -> tuple[dict, ...]:
    """[[point]] tables: hardware points named one by one (scalar values of [hardware] axes)."""
    if items is None:
        return ()
    if not isinstance(items, list) or not items:
        raise _Bad("[[point]] must be one or more tables of [hardware] axes")
    for point in items:
        unknown = sorted(set(point) - set(AXES))
        if unknown:
            raise _Bad(f"[[point]] has no axis {unknown[0]!r}; valid: {', '.join(AXES)}")
        for name, value in point.items():
            if isinstance(value, list):
                raise _Bad(f"[[point]] {name} must be one value; lists belong in [hardware]")
            _check_value(name, value)
        for name in point:  # a point that leaves it out takes the default hardware's
            axes.setdefault(name, (_default(name),))
    return tuple(items)


def _default(name: str):
    special = {"array": DEFAULT.name, "sram_kib": DEFAULT.ifmap_sram_kib, "mapping": "rtl",
               "objective": "cycles", "dataflow": "os", "fused": False, "keep_on_chip": False}
    return special[name] if name in special else getattr(DEFAULT, name)


def _table(doc: dict, name: str, keys: tuple[str, ...]) -> dict:
    table = doc.get(name, {})
    if not isinstance(table, dict):
        raise _Bad(f"[{name}] must be a table")
    unknown = sorted(set(table) - set(keys))
    if unknown:
        kind = "axis" if name == "hardware" else "key"
        raise _Bad(f"[{name}] has no {kind} {unknown[0]!r}; valid: {', '.join(keys)}")
    return table


def _axis(name: str, value) -> tuple:
    values = tuple(value) if isinstance(value, list) else (value,)
    if not values:
        raise _Bad(f"[hardware] {name} is empty; give one value or a list of at least one")
    return tuple(dict.fromkeys(values))


def _check_value(name: str, value) -> None:
    """One axis value alone on the default hardware: what HardwareParams refuses, we refuse."""
    where = f"[hardware] {name} = {value!r}"
    if name == "mapping" and value not in MAPPINGS:
        raise _Bad(f"{where}: expected one of {', '.join(MAPPINGS)}")
    if name == "objective" and value not in COST_OBJECTIVES:
        raise _Bad(f"{where}: expected one of {', '.join(COST_OBJECTIVES)}")
    if name in ("fused", "keep_on_chip"):
        if not isinstance(value, bool):
            raise _Bad(f"{where}: expected true or false")
        return
    if name == "clock_mhz":
        if value != "synth" and (isinstance(value, bool) or not isinstance(value, (int, float))
                                 or value <= 0):
            raise _Bad(f"{where}: expected a clock in MHz > 0 or \"synth\"")
        return
    if name == "dataflow" and value not in DATAFLOWS and value not in DATAFLOWS.values():
        raise _Bad(f"{where}: expected one of {', '.join(DATAFLOWS)}")
    point = {name: value}
    if name == "exponent_headroom":
        point["exponent"] = "predicted"
    if name == "tensor_buffer_words":  # its lower bound depends on the array: the smallest here
        point["array"] = "1x1"
    if name == "lanes" and isinstance(value, int) and value > 0:  # must divide cols: its own
        point["array"] = f"{value}x{value}"
    try:
        hardware_params(point)
    except ValueError as error:
        raise _Bad(f"{where}: {error}") from None


def _workloads(items) -> tuple[Workload, ...]:
    if items is None:
        return (Workload("lenet5", (1, 28, 28), 64),)
    if not isinstance(items, list) or not items:
        raise _Bad("[[workload]] must be one or more tables with model, input, batch")
    out = []
    for item in items:
        extra = sorted(set(item) - {"model", "input", "batch"})
        if extra:
            raise _Bad(f"[[workload]] has no key {extra[0]!r}; valid: model, input, batch")
        model = item.get("model", "lenet5")
        if model not in MODELS:
            raise _Bad(f"[[workload]] model {model!r} is unknown; models: {', '.join(MODELS)}")
        if "input" in item:
            match = re.fullmatch(r"(\d+)x(\d+)x(\d+)", str(item["input"]))
            if not match or any(int(v) < 1 for v in match.groups()):
                raise _Bad(f"[[workload]] input must be CxHxW, e.g. \"3x32x32\"; "
                           f"got {item['input']!r}")
            shape = tuple(int(v) for v in match.groups())
        else:
            h, w, c = MODELS[model].input_shape
            shape = (c, h, w)
        out.append(Workload(model, shape, _int(item, "batch", 64, 1, "[[workload]]")))
    return tuple(out)


def _numerics(table) -> Numerics | None:
    if table is None:
        return None
    keys = ("model", "dataset", "epochs", "seeds", "rounding", "batch_size", "limit_train",
            "limit_test", "stop_at_chance_after")
    extra = sorted(set(table) - set(keys))
    if extra:
        raise _Bad(f"[numerics] has no key {extra[0]!r}; valid: {', '.join(keys)}")
    from niti_hw.data import DATASETS

    model = table.get("model", "lenet5")
    if model not in MODELS:
        raise _Bad(f"[numerics] model {model!r} is unknown; models: {', '.join(MODELS)}")
    dataset = table.get("dataset", "mnist")
    if dataset not in DATASETS:
        raise _Bad(f"[numerics] dataset {dataset!r} is unknown; datasets: {', '.join(DATASETS)}")
    seeds = _list(table, "seeds", [0])
    if not seeds or any(not isinstance(s, int) or s < 0 for s in seeds):
        raise _Bad(f"[numerics] seeds must be a non-empty list of integers >= 0; got {seeds!r}")
    rounding = _list(table, "rounding", ["pseudo"])
    bad = [r for r in rounding if r not in ROUNDING_MODES]
    if not rounding or bad:
        raise _Bad(f"[numerics] rounding must list modes of {', '.join(ROUNDING_MODES)}; "
                   f"got {rounding!r}")
    limits = {name: _int(table, name, None, 1, "[numerics]")
              for name in ("limit_train", "limit_test", "stop_at_chance_after")}
    return Numerics(model=model, dataset=dataset, epochs=_int(table, "epochs", 1, 1, "[numerics]"),
                    seeds=tuple(dict.fromkeys(seeds)), rounding=tuple(dict.fromkeys(rounding)),
                    batch_size=_int(table, "batch_size", 64, 1, "[numerics]"), **limits)


def _synthesis(table) -> Synthesis:
    if table is None:
        return Synthesis()
    extra = sorted(set(table) - {"run_missing", "unit", "report"})
    if extra:
        raise _Bad(f"[synthesis] has no key {extra[0]!r}; valid: run_missing, unit, report")
    unit = table.get("unit", "systolic_array")
    if unit not in ("systolic_array", "training_core"):
        raise _Bad(f"[synthesis] unit must be systolic_array or training_core; got {unit!r}")
    return Synthesis(bool(table.get("run_missing", False)), unit, table.get("report"))


def _metrics(table: dict, key: str, default) -> tuple[str, ...]:
    names = _list(table, key, list(default))
    for name in names:
        if name not in METRICS:
            raise _Bad(f"[objectives] {key} names unknown metric {name!r}; metrics: "
                       f"{', '.join(METRICS)}")
    return tuple(names)


def _constraint(text) -> Constraint:
    match = CONSTRAINT.fullmatch(str(text))
    if not match:
        raise _Bad(f"[objectives] constraint {text!r} must look like \"ecp5_lut4 <= 20000\"")
    metric, op, value = match.groups()
    if metric not in METRICS:
        raise _Bad(f"[objectives] constraint {text!r} is on unknown metric {metric!r}; metrics: "
                   f"{', '.join(METRICS)}")
    try:
        return Constraint(metric, op, float(value))
    except ValueError:
        raise _Bad(f"[objectives] constraint {text!r}: {value!r} is not a number") from None


def _list(table: dict, key: str, default=()) -> list:
    value = table.get(key, list(default))
    if not isinstance(value, list):
        raise _Bad(f"{key} must be a list; got {value!r}")
    return value


def _int(table: dict, key: str, default, low: int, where: str = "[study]"):
    value = table.get(key, default)
    if value is None and default is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise _Bad(f"{where} {key} must be an integer >= {low}; got {value!r}")
    return value
