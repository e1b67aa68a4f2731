"""The feasible designs (every constraint holds) and the non-dominated ones among them."""

from __future__ import annotations

import numpy as np
import pandas as pd


def feasible(frame: pd.DataFrame, constraints) -> pd.Series:
    """Finished designs for which every constraint holds; a metric that is missing (a size never
    synthesised, accuracy not measured) fails the constraints on it."""
    mask = frame["status"] == "ok"
    for constraint in constraints:
        values = pd.to_numeric(frame.get(constraint.metric), errors="coerce")
        if values is None:
            return pd.Series(False, index=frame.index)
        mask &= constraint.holds(values).fillna(False)
    return mask


def front(frame: pd.DataFrame, objectives: list[tuple[str, str]]) -> pd.Series:
    """True for rows no other row dominates (no worse in every objective, better in one); rows
    missing an objective are never on the front."""
    if not len(frame):
        return pd.Series(dtype=bool)
    values = np.column_stack([
        pd.to_numeric(frame[name], errors="coerce").to_numpy(float) * (1 if sense == "min" else -1)
        for name, sense in objectives])
    complete = ~np.isnan(values).any(axis=1)
    on_front = complete.copy()
    candidates = values[complete]
    for row in np.flatnonzero(complete):
        v = values[row]
        dominated = (candidates <= v).all(axis=1) & (candidates < v).any(axis=1)
        on_front[row] = not dominated.any()
    return pd.Series(on_front, index=frame.index)


def pareto_table(frame: pd.DataFrame, constraints, objectives) -> pd.DataFrame:
    """The front of each workload: a LeNet-5 step and a VGG16 step are not rivals."""
    ok = frame[feasible(frame, constraints)]
    on = pd.Series(False, index=ok.index)
    for _, rows in ok.groupby("workload", sort=False) if "workload" in ok else [(None, ok)]:
        on[rows.index] = front(rows, objectives)
    return ok[on].sort_values(["workload"] * ("workload" in ok) + [n for n, _ in objectives])
