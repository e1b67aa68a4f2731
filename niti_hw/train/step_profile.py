"""Where a NITI training step's time goes, per kind of operation: `niti-hw bench --profile`.

Every backend runs the golden functions, so timing them is timing the step: for the length of a
profile the golden functions and layer methods below are wrapped with timers (and restored
afterwards; nothing else changes). Time is exclusive: a rounding inside the loss counts as
rounding, the loss's own work as loss, and whatever no wrapped function claims (the layers' own
reshapes and dtype conversions, the backend's batch upload and scoring) as `other`. GEMMs are
split by phase as in the datapath model's sites: forward, then in a backward pass the error GEMM
(when the layer propagates) before the weight-gradient GEMM.
"""

from __future__ import annotations

import contextlib
import functools
import time

import pandas as pd

from niti_hw.golden import gemm, init, layers, loss, network, numbers, rounding, tensor

GOLDEN_MODULES = (gemm, init, layers, loss, network, numbers, rounding, tensor)

FUNCTIONS = {
    "gemm": [(gemm, "tensor_matmul"), (gemm, "blas_matmul"), (gemm, "torch_matmul")],
    "range checks": [(numbers, "check_int8_range"), (gemm, "check_reduction_length")],
    "im2col": [(layers.Conv2d, "_columns")],
    "col2im": [(layers.Conv2d, "_fold")],
    "bitwidth": [(numbers, "bitwidth")],
    "rounding": [(rounding, "shift_round"), (numbers, "saturate_int8")],
    "lfsr draws": [(rounding.LfsrLanes, "draw")],
    "pooling": [(layers.MaxPool2d, "forward"), (layers.MaxPool2d, "backward")],
    "relu": [(layers.ReLU, "forward"), (layers.ReLU, "backward")],
    "loss": [(loss, "ce_gradient")],
    "update": [(layers.WeightedLayer, "update"), (init.IntegerWeights, "apply"),
               (init.IntegerWeights, "as_int8")],
}
"""Category -> the golden functions whose own time it counts."""

CATEGORIES = ("gemm forward", "gemm error", "gemm gradient", *list(FUNCTIONS)[1:], "other")


class StepProfile:
    """Exclusive seconds per category, accumulated over the wrapped calls."""

    def __init__(self, sync=None):
        self.seconds = dict.fromkeys(CATEGORIES, 0.0)
        self.total = 0.0
        self._sync = sync or (lambda: None)
        self._stack: list[list] = []  # [category, start, seconds spent in wrapped callees]
        self._phases: list[str] = []

    def _enter(self, category: str) -> None:
        self._sync()
        self._stack.append([category, time.perf_counter(), 0.0])

    def _leave(self) -> float:
        self._sync()
        category, start, inner = self._stack.pop()
        spent = time.perf_counter() - start
        self.seconds[category] += spent - inner
        if self._stack:
            self._stack[-1][2] += spent
        return spent

    def timed(self, category: str, function):
        @functools.wraps(function)
        def wrapper(*args, **kwargs):
            if category != "gemm":
                self._enter(category)
            elif self._stack and self._stack[-1][0].startswith("gemm"):  # an engine's kernel
                self._enter(self._stack[-1][0])
            else:
                self._enter(f"gemm {self._phases.pop(0) if self._phases else 'forward'}")
            try:
                return function(*args, **kwargs)
            finally:
                self._leave()
        return wrapper

    def phased(self, function):
        """A weighted layer's backward: its GEMMs are the error (if it propagates), then the
        weight gradient."""
        @functools.wraps(function)
        def wrapper(layer, e, policy, propagate=True):
            self._phases = ["error", "gradient"] if propagate else ["gradient"]
            try:
                return function(layer, e, policy, propagate)
            finally:
                self._phases = []
        return wrapper

    def step(self, function):
        """Time one whole step; its unclaimed time is `other`."""
        self._enter("other")
        try:
            return function()
        finally:
            self.total += self._leave()


def _replace_everywhere(original, replacement, patched: list) -> None:
    """Bind `replacement` wherever a golden module holds `original` under any name."""
    for module in GOLDEN_MODULES:
        for name, value in list(vars(module).items()):
            if value is original:
                patched.append((module, name, value))
                setattr(module, name, replacement)
    for key, value in gemm.ENGINES.items():
        if value is original:
            patched.append((gemm.ENGINES, key, value))
            gemm.ENGINES[key] = replacement


@contextlib.contextmanager
def profiling(profile: StepProfile):
    """The golden functions wrapped with `profile`'s timers inside the block, restored after."""
    patched: list = []
    try:
        for category, targets in FUNCTIONS.items():
            for owner, name in targets:
                original = vars(owner)[name]
                replacement = profile.timed(category, original)
                if isinstance(owner, type):
                    patched.append((owner, name, original))
                    setattr(owner, name, replacement)
                else:
                    _replace_everywhere(original, replacement, patched)
        for cls in (layers.Linear, layers.Conv2d):
            patched.append((cls, "backward", vars(cls)["backward"]))
            cls.backward = profile.phased(vars(cls)["backward"])
        yield profile
    finally:
        for owner, name, original in reversed(patched):
            if isinstance(owner, dict):
                owner[name] = original
            else:
                setattr(owner, name, original)


def profile_steps(run, batches, sync=None) -> StepProfile:
    """Profile `run.train_batch` on each index array of `batches` (warm it up first yourself)."""
    profile = StepProfile(sync)
    with profiling(profile):
        for index in batches:
            profile.step(lambda: run.train_batch(index, 0))
    return profile


def profile_table(profile: StepProfile, steps: int, **labels) -> pd.DataFrame:
    """ms per step and share of the step per category, with `labels` as leading columns."""
    rows = [{**labels, "category": category, "ms_per_step": 1e3 * seconds / steps,
             "share": seconds / profile.total if profile.total else 0.0}
            for category, seconds in profile.seconds.items()]
    rows.append({**labels, "category": "step", "ms_per_step": 1e3 * profile.total / steps,
                 "share": 1.0})
    return pd.DataFrame(rows)
