"""Reporting side only (floats allowed here by SPEC): loss display, metrics table, curves plot."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..atomic_write import atomic_write


def cross_entropy(values: np.ndarray, exp: int, labels: np.ndarray) -> float:
    """Mean softmax cross-entropy of outputs values * 2**exp, for display."""
    z = values.astype(np.float64) * 2.0**exp
    z -= z.max(axis=1, keepdims=True)
    log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return float(-log_p[np.arange(len(labels)), labels].mean())


def plot_curves(metrics: pd.DataFrame, path: Path):
    """Test accuracy and training loss per epoch, one line per run, written to a PNG; returns
    the (closed) figure so its axes can be checked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    for run, rows in metrics.groupby("run"):
        left.plot(rows.epoch + 1, 100 * rows.test_accuracy, marker="o", label=run)
        right.plot(rows.epoch + 1, rows.train_loss, marker="o", label=run)
    left.set(xlabel="epoch", ylabel="test accuracy (%)", title="Test accuracy")
    right.set(xlabel="epoch", ylabel="cross-entropy", title="Training loss")
    last = int(metrics.epoch.max()) + 1 if len(metrics) else 1
    for axis in (left, right):
        axis.grid(alpha=0.3)
        axis.set_xlim(0.5, last + 0.5)  # whole epochs, also for a one-epoch run
        if last <= 10:
            axis.set_xticks(range(1, last + 1))
        else:
            axis.xaxis.set_major_locator(MaxNLocator(integer=True))
        axis.legend()
    fig.tight_layout()
    with atomic_write(path) as tmp:
        fig.savefig(tmp, dpi=100)
    plt.close(fig)
    return fig
