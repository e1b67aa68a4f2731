"""From a space to the design points and the tasks that measure them, each with its key.

A design point is one hardware point x workload (x rounding mode, when the space trains). Its
metrics come from three stored records: the estimate of its step (every hardware field matters),
the accuracy runs of its numerics (only what the datapath model reads: accumulator width,
exponent strategy and headroom, and the tile for a per-tile exponent; one run per seed, shared by
every point that differs in memories or bandwidth only) and the synthesis of its array size.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

from niti_hw.explore.space import ESTIMATE_ONLY, Space, hardware_params
from niti_hw.explore.store import point_key
from niti_hw.explore.tasks import failed
from niti_hw.params import HardwareParams

ACCURACY_FIELDS = ("acc_bits", "exponent", "exponent_headroom")
TILE_FIELDS = ("rows", "cols", "lanes")  # read by the datapath model for a per-tile exponent


@dataclass
class Plan:
    designs: list[dict] = field(default_factory=list)  # one per design point
    estimates: dict[str, dict] = field(default_factory=dict)  # key -> config
    accuracy: dict[str, dict] = field(default_factory=dict)
    groups: dict[str, dict] = field(default_factory=dict)  # accuracy group -> config sans seed
    runs_of: dict[str, list[str]] = field(default_factory=dict)  # accuracy group -> run keys
    invalid: list[dict] = field(default_factory=list)  # rows of points the hardware refuses
    sizes: dict[str, HardwareParams] = field(default_factory=dict)  # size -> params to synthesise


def estimate_config(params: HardwareParams, point: dict, workload) -> dict:
    hardware = dataclasses.asdict(params)
    hardware.pop("clock_mhz")  # the clock only scales time, applied when results are joined
    config = {"hardware": hardware, "workload": workload.to_dict()}
    config.update({name: point[name] for name in ESTIMATE_ONLY if name in point})
    return config


def accuracy_hardware(params: HardwareParams) -> dict:
    names = ACCURACY_FIELDS + (TILE_FIELDS if params.exponent == "tile" else ())
    return {name: getattr(params, name) for name in names}


def make_plan(space: Space, points: list[dict] | None = None) -> Plan:
    plan = Plan()
    for point in space.points() if points is None else points:
        try:
            params = hardware_params(point)
        except ValueError as error:
            params = None
            reason = error
        for workload in space.workloads:
            design = {**point, "workload": workload.name, "model": workload.model}
            if params is None:
                config = {"point": point, "workload": workload.to_dict()}
                key = point_key("estimate", config)
                plan.invalid.append(failed(key, "estimate", config, reason))
                plan.designs.append({**design, "estimate_key": key, "size": None})
                continue
            config = estimate_config(params, point, workload)
            key = point_key("estimate", config)
            plan.estimates[key] = config
            plan.sizes.setdefault(params.name, params)
            design.update(estimate_key=key, size=params.name, lanes_used=params.lanes)
            if space.numerics is None:
                plan.designs.append(design)
                continue
            for rounding in space.numerics.rounding:
                group = _accuracy_group(space, params, rounding, plan)
                plan.designs.append({**design, "rounding": rounding, "accuracy_group": group})
    return plan


def _accuracy_group(space: Space, params: HardwareParams, rounding: str, plan: Plan) -> str:
    n = space.numerics
    base = {"model": n.model, "dataset": n.dataset, "epochs": n.epochs,
            "batch_size": n.batch_size, "limit_train": n.limit_train, "limit_test": n.limit_test,
            "rounding": rounding, "hardware": accuracy_hardware(params)}
    if n.stop_at_chance_after is not None:  # absent otherwise: the keys of earlier runs hold
        base["stop_at_chance_after"] = n.stop_at_chance_after
    group = point_key("accuracy-group", base)
    if group not in plan.groups:
        plan.groups[group] = base
        plan.runs_of[group] = []
        for seed in n.seeds:
            config = {**base, "seed": seed}
            key = point_key("accuracy", config)
            plan.accuracy[key] = config
            plan.runs_of[group].append(key)
    return group


def synth_config(unit: str, params: HardwareParams) -> dict:
    """The array or top at one size, lanes fitted as `niti-hw synth` fits them."""
    lanes = min(params.lanes, params.cols)
    while params.cols % lanes or params.lfsr_lanes % lanes:
        lanes -= 1
    fitted = params.replace(lanes=lanes, clock_mhz=None)
    keep = ("rows", "cols", "lanes", "acc_bits", "lfsr_lanes", "lfsr_seed", "round_mode",
            "tensor_buffer_words") if unit == "training_core" else \
        ("rows", "cols", "lanes", "acc_bits", "lfsr_lanes", "lfsr_seed", "round_mode")
    return {"unit": unit, "hardware": {name: getattr(fitted, name) for name in keep}}


def chunks(items: list, size: int) -> list[list]:
    count = max(1, math.ceil(len(items) / size))
    step = math.ceil(len(items) / count)
    return [items[i:i + step] for i in range(0, len(items), step)]
