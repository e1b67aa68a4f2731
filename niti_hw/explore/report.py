"""The study's outputs: tables (CSV), a static plot (PNG) and an interactive page (Plotly HTML).

Plots: energy per step against time per step, coloured by area (designs whose size has no
synthesis in grey), one marker shape per workload, the Pareto front circled; and accuracy
against energy when the study trains.
Hovering over a point of the page shows its whole configuration.
"""

from __future__ import annotations

import html
from pathlib import Path

import pandas as pd

from niti_hw.atomic_write import atomic_write

AREA = "ecp5_lut4"
SYMBOLS = ("circle", "square", "diamond", "triangle-up", "cross", "x")  # one per workload
MARKERS = ("o", "s", "D", "^", "P", "X")
PLOTS = {"energy-time": ("time_ms", "energy_uj", "time per step (ms)", "energy per step (uJ)"),
         "accuracy-energy": ("energy_uj", "accuracy_pct", "energy per step (uJ)",
                             "test accuracy (%), mean over seeds")}


def write_text(path: Path, text: str) -> None:
    """Whole or not at all (`niti_hw.atomic_write`)."""
    with atomic_write(path) as tmp:
        tmp.write_text(text)


def write_csv(path: Path, frame: pd.DataFrame) -> None:
    write_text(path, frame.to_csv(index=False))


def _plots(frame: pd.DataFrame) -> dict:
    shown = {"energy-time": frame[frame["status"] == "ok"]}
    if "accuracy_pct" in frame.columns:
        shown["accuracy-energy"] = frame[(frame["status"] == "ok")
                                         & frame["accuracy_pct"].notna()]
    return shown


def static_plot(path: Path, frame: pd.DataFrame, front: pd.DataFrame) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = _plots(frame)
    fig, axes = plt.subplots(1, len(shown), figsize=(6.5 * len(shown), 5), squeeze=False)
    for ax, (name, points) in zip(axes[0], shown.items()):
        x, y, xlabel, ylabel = PLOTS[name]
        area = points[AREA] if AREA in points.columns else pd.Series(dtype=float)
        has_area = area.notna()
        dots = None
        for index, workload in enumerate(dict.fromkeys(frame["workload"])):
            mine = points["workload"] == workload
            marker = MARKERS[index % len(MARKERS)]
            grey, coloured = mine & ~has_area, mine & has_area
            if grey.any():
                ax.scatter(points.loc[grey, x], points.loc[grey, y], s=12, c="lightgrey",
                           marker=marker, label=f"{workload}: size not synthesised")
            if coloured.any():
                dots = ax.scatter(points.loc[coloured, x], points.loc[coloured, y], s=12,
                                  c=area[coloured], cmap="viridis", marker=marker,
                                  vmin=area.min(), vmax=area.max(), label=workload)
        if dots is not None:
            fig.colorbar(dots, ax=ax, label="ECP5 LUT4")
        on = front[front[y].notna()] if y in front.columns else front.iloc[:0]
        ax.scatter(on[x], on[y], s=60, facecolors="none", edgecolors="red", label="Pareto front")
        ax.set(xlabel=xlabel, ylabel=ylabel)
        if len(points):  # log axes need values; a study with none finished draws empty axes
            ax.set(xscale="log", yscale="log" if y != "accuracy_pct" else "linear")
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    with atomic_write(path) as tmp:
        fig.savefig(tmp, dpi=120)
    plt.close(fig)


def html_report(folder: Path, title: str, frame: pd.DataFrame, front: pd.DataFrame,
                axes: list[str], summary: str) -> Path:
    """report.html beside plotly.min.js (written once): opens offline in any browser."""
    from niti_hw.extras import import_extra

    go = import_extra("plotly.graph_objects", "niti-hw explore's HTML report")
    pio = import_extra("plotly.io", "niti-hw explore's HTML report")
    script = folder / "plotly.min.js"
    if not script.is_file():
        from plotly.offline import get_plotlyjs

        write_text(script, get_plotlyjs())
    parts = []
    workloads = list(dict.fromkeys(frame["workload"]))
    for name, points in _plots(frame).items():
        x, y, xlabel, ylabel = PLOTS[name]
        fig = go.Figure()
        has_area = points[AREA].notna() if AREA in points.columns else \
            pd.Series(False, index=points.index)
        for label, subset, marker in (
                ("size not synthesised", points[~has_area], {"color": "lightgrey"}),
                ("designs", points[has_area],
                 {"color": points.loc[has_area, AREA] if has_area.any() else None,
                  "colorscale": "Viridis", "colorbar": {"title": {"text": "ECP5 LUT4"}},
                  "showscale": True})):
            if len(subset):
                symbols = [SYMBOLS[workloads.index(w) % len(SYMBOLS)] for w in subset["workload"]]
                fig.add_trace(go.Scatter(x=subset[x], y=subset[y], mode="markers", name=label,
                                         marker={"size": 7, "symbol": symbols, **marker},
                                         text=[_hover(row, axes) for row in
                                               subset.to_dict("records")],
                                         hovertemplate="%{text}<extra></extra>"))
        on = front[front[y].notna()] if y in front.columns else front.iloc[:0]
        fig.add_trace(go.Scatter(x=on[x], y=on[y], mode="markers", name="Pareto front",
                                 hoverinfo="skip", marker={"size": 14, "symbol": "circle-open",
                                                           "color": "red"}))
        fig.update_layout(title=f"{ylabel} against {xlabel}", xaxis_title=xlabel,
                          yaxis_title=ylabel, xaxis_type="log", height=560,
                          yaxis_type="log" if y != "accuracy_pct" else "linear")
        parts.append(pio.to_html(fig, include_plotlyjs=False, full_html=False, div_id=name))
    table = front.to_html(index=False, border=0, classes="front", na_rep="")
    page = (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}"
            "</title><script src='plotly.min.js'></script><style>body{font-family:sans-serif}"
            "table.front{border-collapse:collapse;font-size:12px}table.front td,table.front th"
            "{padding:2px 6px;border-bottom:1px solid #ddd}</style></head><body>"
            f"<h1>{html.escape(title)}</h1><p>{html.escape(summary)}</p>{''.join(parts)}"
            f"<h2>Pareto front ({len(front)} designs)</h2>{table}</body></html>")
    path = folder / "report.html"
    write_text(path, page)
    return path


def _hover(row: dict, axes: list[str]) -> str:
    lines = [f"<b>{row['design']}</b> {html.escape(str(row.get('workload', '')))}"]
    lines += [f"{name}: {row[name]}" for name in axes if name in row]
    for name in ("rounding", "energy_uj", "time_ms", "clock_mhz", AREA, "total_bram",
                 "accuracy_pct", "accuracy_std", "accuracy_count"):
        if name in row and pd.notna(row[name]):
            value = row[name]
            lines.append(f"{name}: {value:.4g}" if isinstance(value, float) else
                         f"{name}: {value}")
    return "<br>".join(lines)
