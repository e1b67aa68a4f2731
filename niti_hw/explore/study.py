"""A whole study: plan, run what is not stored yet, join, and write the outputs.

Outputs in the study folder: `results.csv` (every design point with its configuration, metrics,
status and reason), `pareto.csv` (the feasible non-dominated designs), `accuracy_summary.csv`
(mean, standard deviation and count over seeds), `synth_report.csv` (the synthesis report with
the sizes this study synthesised appended), `pareto.png` and `report.html`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import pandas as pd

from niti_hw.explore import engine, pareto, report, results
from niti_hw.explore.plan import Plan, chunks, make_plan, synth_config
from niti_hw.explore.space import Space
from niti_hw.explore.store import Store, point_key
from niti_hw.explore.tasks import run_accuracy, run_estimates, run_synth


@dataclass
class Outcome:
    designs: int
    ok: int
    failed: int
    pending: int
    front: pd.DataFrame
    computed: dict
    folder: Path
    task_seconds: float  # wall time of running tasks on Dask (no cluster start, no join)


def run_study(space: Space, out: Path, scheduler: str | None = None, workers: int | None = None,
              dashboard: str | None = ":8787", progress: bool = False, retry_failed: bool = False,
              log=print) -> Outcome:
    out = Path(out)
    with Store(out) as store:
        report.write_text(out / "space.toml", space.path.read_text())
        base = results.base_report(space)
        computed = {"ok": 0, "failed": 0, "seconds": 0.0}
        with _LazyClient(scheduler, workers, dashboard, log) as get_client:
            run = partial(_run_pending, space, store, base, get_client, progress, retry_failed,
                          computed)
            plan = _optuna_plan(space, store, base, run) if space.sampler == "optuna" \
                else make_plan(space)
            run(plan, synthesis=True, accuracy=True)
        return _finish(space, plan, store, base, out, computed, log)


class _LazyClient:
    """Start the cluster only when some task is pending: a finished study re-runs in seconds."""

    def __init__(self, *args):
        self.args, self.context, self.client = args, None, None

    def __enter__(self):
        return self.get

    def get(self):
        if self.client is None:
            self.context = engine.client(*self.args)
            self.client = self.context.__enter__()
        return self.client

    def __exit__(self, *exc):
        if self.context is not None:
            self.context.__exit__(*exc)


def _pending(store: Store, kind: str, keys, retry_failed: bool) -> list[str]:
    stored = store.read(kind)
    skip = set(stored["key"]) if not retry_failed else \
        set(stored.loc[stored["status"] == "ok", "key"])
    return [key for key in keys if key not in skip]


def _run_pending(space, store, base, get_client, progress, retry_failed, computed, plan: Plan,
                 synthesis: bool, accuracy: bool) -> None:
    invalid = {row["key"]: row for row in plan.invalid}
    # a combination the hardware refuses fails the same way every time: stored once, never retried
    store.write("estimate", [invalid[k] for k in _pending(store, "estimate", invalid, False)])
    tasks = []
    todo = _pending(store, "estimate", plan.estimates, retry_failed)
    for chunk in chunks(todo, space.chunk) if todo else []:
        items = [(key, plan.estimates[key]) for key in chunk]
        tasks.append(engine.Task("estimate", run_estimates, (items,), dict(items)))
    if accuracy:
        for key in _pending(store, "accuracy", plan.accuracy, retry_failed):
            tasks.append(engine.Task("accuracy", run_accuracy, (key, plan.accuracy[key]),
                                     {key: plan.accuracy[key]}))
    if synthesis and space.synthesis.run_missing:
        merged = results.merged_report(base, store.read("synth"))
        wanted = {}
        for size in results.missing_sizes(merged, space.synthesis.unit, plan.sizes):
            config = synth_config(space.synthesis.unit, plan.sizes[size])
            wanted[point_key("synth", config)] = config
        work = str((store.folder / "synth_work").resolve())
        for key in _pending(store, "synth", wanted, retry_failed):
            tasks.append(engine.Task("synth", run_synth, (key, wanted[key], work),
                                     {key: wanted[key]}))
    if tasks:
        dask_client = get_client()
        start = time.perf_counter()
        counts = engine.run_tasks(dask_client, tasks, store, progress)
        computed["seconds"] += time.perf_counter() - start
        for status, count in counts.items():
            computed[status] += count


def _optuna_plan(space: Space, store: Store, base: pd.DataFrame, run) -> Plan:
    """Ask a multi-objective sampler (Optuna's NSGA-II) for points in batches of `chunk`, estimate
    them, tell it their objectives; `samples` points in all. Estimate and area metrics only."""
    from niti_hw.extras import import_extra

    optuna = import_extra("optuna", "niti-hw explore's optuna sampler")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    objectives = space.objectives
    directions = ["minimize" if sense == "min" else "maximize" for _, sense in objectives]
    study = optuna.create_study(directions=directions, sampler=optuna.samplers.NSGAIISampler(
        seed=space.seed, population_size=max(2, min(space.chunk, space.samples))))
    distributions = {name: optuna.distributions.CategoricalDistribution(list(values))
                     for name, values in space.axes.items()}
    asked: list[dict] = []
    while len(asked) < space.samples:
        trials = [study.ask(distributions)
                  for _ in range(min(space.chunk, space.samples - len(asked)))]
        points = [dict(trial.params) for trial in trials]
        asked += points
        plan = make_plan(space, points)
        run(plan, synthesis=False, accuracy=False)
        frame = _joined(space, plan, store, base, None)
        for trial, rows in zip(trials, _per_point(frame, len(points), len(space.workloads))):
            values = [rows[name].sum() for name, _ in objectives]
            if rows["status"].eq("ok").all() and not pd.isna(values).any():
                study.tell(trial, values)
            else:
                study.tell(trial, state=optuna.trial.TrialState.FAIL)
    unique = {tuple(sorted(point.items())): point for point in asked}
    return make_plan(space, list(unique.values()))


def _per_point(frame: pd.DataFrame, points: int, workloads: int):
    """The design rows of each asked point (a point's workloads are consecutive rows)."""
    for index in range(points):
        yield frame.iloc[index * workloads:(index + 1) * workloads]


def _joined(space, plan, store, base, accuracy) -> pd.DataFrame:
    merged = results.merged_report(base, store.read("synth"))
    path = store.folder / "synth_report.csv"
    report.write_csv(path, merged)
    return results.join(space, plan, store.read("estimate"), merged, path, accuracy)


def _finish(space, plan, store, base, out, computed, log) -> Outcome:
    accuracy = None
    if space.numerics is not None:
        accuracy = results.accuracy_summary(plan, store.read("accuracy"))
        report.write_csv(out / "accuracy_summary.csv", accuracy)
    frame = _joined(space, plan, store, base, accuracy)
    front = pareto.pareto_table(frame, space.constraints, space.objectives)
    axes = [name for name in space.axes if len(space.axes[name]) > 1 or name in space.named]
    shown = ["design", "workload", *axes, *(["rounding"] if "rounding" in frame else []),
             *[name for name, _ in space.objectives],
             *[c.metric for c in space.constraints],
             "energy_uj", "time_ms", "clock_mhz", "ecp5_lut4", "total_bram", "accuracy_pct",
             "accuracy_std", "accuracy_count"]  # and what the plots and hover labels show
    front = front[list(dict.fromkeys(c for c in shown if c in front.columns))]
    report.write_csv(out / "results.csv", frame)
    report.write_csv(out / "pareto.csv", front)
    report.static_plot(out / "pareto.png", frame, front)
    status = frame["status"].value_counts()
    summary = (f"{len(frame)} design points: {status.get('ok', 0)} ok, "
               f"{status.get('failed', 0)} failed, {status.get('pending', 0)} pending; "
               f"{len(front)} on the Pareto front of "
               f"{', '.join(f'{s}imise {m}' for m, s in space.objectives)}"
               + (f" subject to {', '.join(c.text for c in space.constraints)}"
                  if space.constraints else ""))
    report.html_report(out, space.name, frame, front, axes, summary)
    _no_area_note(space, frame, log)
    log(summary)
    seconds = computed.pop("seconds")
    return Outcome(len(frame), int(status.get("ok", 0)), int(status.get("failed", 0)),
                   int(status.get("pending", 0)), front, computed, out, seconds)


def _no_area_note(space, frame, log) -> None:
    if "ecp5_lut4" not in frame.columns or space.synthesis.run_missing:
        return
    missing = sorted(set(frame.loc[frame["ecp5_lut4"].isna() & frame["size"].notna(), "size"]))
    if missing:
        log(f"no {space.synthesis.unit} synthesis for {', '.join(missing)} (area missing; their "
            "clock is the largest synthesised size's): set [synthesis] run_missing = true")

