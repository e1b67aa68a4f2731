"""The three kinds of task a study runs on its workers; each returns stored rows, never raises.

A task that fails for its own reason (a hardware combination the model refuses, a design that
does not place, training that stops) returns a row with status "failed" and the one-line reason,
so the study goes on. A worker that dies is Dask's to handle: the task runs again elsewhere.
"""

from __future__ import annotations

import json
import re
import time
from functools import lru_cache
from pathlib import Path

from niti_hw.params import HardwareParams

COST_KEYWORDS = ("mapping", "objective", "fused", "keep_on_chip")
"""Estimate settings passed to the cost model only when a space names them."""


def one_line(error: BaseException) -> str:
    """The error in one line; a tool's failure (`niti_hw.rtl.synth`: '<tool> failed in <folder>
    (see <log>): <log tail>') keeps the tool, the log and its ERROR line, not the tail's noise."""
    text = " ".join(str(error).split()) or "no message"
    tool = re.match(r"(.*? failed in \S+ \(see [^)]*\)):", text)
    if tool and "ERROR:" in text:
        text = f"{tool.group(1)}: {text[text.rindex('ERROR:'):]}"
    return f"{type(error).__name__}: {text}"[:300]


def failed(key: str, kind: str, config: dict, error: BaseException) -> dict:
    return {"key": key, "kind": kind, "status": "failed", "reason": one_line(error),
            "config": json.dumps(config, sort_keys=True)}


@lru_cache(maxsize=16)
def _lowered(model: str, shape: tuple[int, int, int], batch: int):
    from niti_hw.perf.lowering import lower

    return lower(model, shape, batch)


def estimate_point(config: dict) -> dict:
    """Cost of one training step of `config` (hardware, workload, optional mapping/objective).

    The one place the explorer calls the cost model: lower the workload, apply the exponent
    strategy, cost every op, sum the step. The step's time needs the clock, which the study joins
    afterwards (it may come from synthesis), so totals run at 1 MHz and only clock-free sums are
    kept.
    """
    from niti_hw.perf.cost import estimate, totals
    from niti_hw.perf.exponent import exponent_ops

    params = HardwareParams(**config["hardware"])
    workload = config["workload"]
    ops = exponent_ops(_lowered(workload["model"], tuple(workload["input"]), workload["batch"]),
                       params.exponent)
    keywords = {name: config[name] for name in COST_KEYWORDS if name in config}
    table = estimate(ops, params, **keywords)
    step = totals(table, params, 1.0, by=None).loc["step"]
    return {
        "macs": int(step["macs"]), "cycles": int(step["cycles"]),
        "compute_cycles": int(step["compute_cycles"]), "stall_cycles": int(step["stall_cycles"]),
        "utilisation": float(step["utilisation"]), "energy_uj": float(step["energy_uj"]),
        "sram_mb": float(step["sram_read_bytes"] + step["sram_write_bytes"]) / 1e6,
        "dram_mb": float(step["dram_read_bytes"] + step["dram_write_bytes"]) / 1e6,
        "spill_mb": float(step["spill_bytes"]) / 1e6,
    }


def run_estimates(items: list[tuple[str, dict]]) -> list[dict]:
    """A chunk of estimate points (estimates take milliseconds; one task each would be mostly
    scheduling). `seconds` is each point's own time, for the overhead measurement."""
    rows = []
    for key, config in items:
        start = time.perf_counter()
        try:
            metrics = estimate_point(config)
        except Exception as error:  # the point's own failure, recorded; the chunk goes on
            rows.append(failed(key, "estimate", config, error))
            continue
        rows.append({"key": key, "kind": "estimate", "status": "ok", "reason": "",
                     "config": json.dumps(config, sort_keys=True), **metrics,
                     "seconds": time.perf_counter() - start})
    return rows


@lru_cache(maxsize=4)
def _data(dataset: str, limit_train: int | None, limit_test: int | None):
    """Loaded once per worker process and reused by every run on it."""
    from niti_hw.data import load_dataset
    from niti_hw.train.prepared import prepare

    return prepare(load_dataset(dataset, limit_train=limit_train, limit_test=limit_test))


def train_accuracy(config: dict) -> dict:
    """Train `config` on the sim backend (its datapath: accumulator, exponent, tile) and return
    the test accuracy after every epoch and what the values did."""
    import pandas as pd

    from niti_hw.models import get_model
    from niti_hw.train import TrainConfig
    from niti_hw.train.build import build_network
    from niti_hw.train.prepared import batches, epoch_order
    from niti_hw.train.sim_backend import SimBackend

    data = _data(config["dataset"], config["limit_train"], config["limit_test"])
    mode = config["rounding"]
    train = TrainConfig(model=config["model"], dataset=config["dataset"],
                        epochs=config["epochs"], batch_size=config["batch_size"],
                        seed=config["seed"], backend="sim", gemm_engine="blas",
                        activation_mode=mode, error_mode=mode, gradient_mode=mode, loss_mode=mode,
                        hardware=config["hardware"] or None)
    built = build_network(get_model(train.model), data.image_shape, data.classes, train.seed)
    run = SimBackend(built, data, train)
    start, history, counts = time.perf_counter(), [], None
    for epoch in range(train.epochs):
        order = epoch_order(train.seed, epoch, len(data.train_labels))
        for index in batches(order, train.batch_size):
            run.train_batch(index, epoch)
        _, stats = run.take_epoch()
        _, accuracy = run.evaluate(data.test_images, data.test_labels)
        history.append(round(100 * float(accuracy), 2))
        _stop_if_at_chance(history, data.classes, config.get("stop_at_chance_after"),
                           train.epochs)
        epoch_counts = pd.DataFrame([vars(s) for s in stats.values()]).sum()
        counts = epoch_counts if counts is None else counts + epoch_counts
    return {"accuracy_pct": history[-1], "epoch_accuracy": json.dumps(history),
            "saturated_outputs": int(counts.saturated), "outputs": int(counts.outputs),
            "beyond_predicted_exponent": int(counts.beyond_exponent),
            "train_seconds": round(time.perf_counter() - start, 2)}


class DidNotLearn(RuntimeError):
    """Training ran, but its test accuracy stayed at chance: a failed point, not a crash."""


def _stop_if_at_chance(history: list[float], classes: int, after: int | None, epochs: int):
    chance = 100 / classes
    if after is not None and len(history) == after and history[-1] < 2 * chance:
        raise DidNotLearn(f"did not learn: {history[-1]:.2f} % test accuracy after epoch "
                          f"{after} of {epochs} (chance {chance:.2f} %); stopped "
                          f"(stop_at_chance_after = {after})")


def run_accuracy(key: str, config: dict) -> list[dict]:
    try:
        metrics = train_accuracy(config)
    except Exception as error:  # training that stops for its own reason is a recorded failure
        return [failed(key, "accuracy", config, error)]
    return [{"key": key, "kind": "accuracy", "status": "ok", "reason": "",
             "config": json.dumps(config, sort_keys=True), **metrics}]


def run_synth(key: str, config: dict, work: str) -> list[dict]:
    """Synthesise one unit at one size with `niti-hw synth`'s flow (ECP5 with place and route,
    no iCE40): minutes. The row carries the report's columns, to be appended to the study's."""
    try:
        from niti_hw.extras import import_extra

        synth = import_extra("niti_hw.rtl.synth", "niti-hw explore's synthesis tasks")
        params = HardwareParams(**config["hardware"])
        job = synth.SynthJob(config["unit"], params)
        table = synth.run_jobs([job], Path(work), ice40=False, pnr=True)
        report = table.iloc[0].to_dict()
    except Exception as error:  # a design that does not fit or place: recorded, study goes on
        return [failed(key, "synth", config, error)]
    return [{"key": key, "kind": "synth", "status": "ok", "reason": "",
             "config": json.dumps(config, sort_keys=True),
             **{name: report[name] for name in ("unit", "size", "lanes", "ecp5_lut4", "ecp5_ff",
                                                 "ecp5_dsp", "ecp5_bram", "ecp5_fmax_mhz",
                                                 "seed")}}]
