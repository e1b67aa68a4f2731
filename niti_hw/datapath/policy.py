"""A golden RoundingPolicy whose GEMMs and narrowings are computed as a given datapath does.

The golden layers call `policy.matmul`, `policy.narrow` and `policy.round`; this subclass answers
with the accumulator width and exponent strategy of the hardware, and counts what the values did
(saturated outputs, values beyond a predicted exponent, skipped updates) per layer and phase. The
layer and phase come from `enter`, called by the wrappers of `niti_hw.datapath.sites`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from niti_hw.golden import INT8_MAX, RoundingPolicy, bitwidth
from niti_hw.golden.numbers import narrowing_shift, saturate, signed_limit
from niti_hw.params import DEFAULT, HardwareParams

from .accumulator import saturating_matmul
from .exponent import beyond_range, narrow_per_tile

INT8_BITS = INT8_MAX.bit_length()


@dataclass
class SiteStats:
    """What the values of one (layer, phase) did, summed over the steps seen."""

    gemms: int = 0
    outputs: int = 0
    saturated: int = 0
    beyond_exponent: int = 0
    updates: int = 0
    skipped_updates: int = 0

    def add(self, other: "SiteStats") -> None:
        for f in dataclasses.fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))


@dataclass
class DatapathPolicy(RoundingPolicy):
    """RoundingPolicy + `hardware`: accumulator width, array tile and exponent strategy.

    With a 32-bit accumulator and the "tensor" exponent every integer equals the golden policy's,
    LFSR draws included. A narrower accumulator saturates in k order; the conv transposed fold
    (int32 sums of GEMM outputs) saturates once more to the accumulator range before narrowing.
    """

    hardware: HardwareParams = DEFAULT
    stats: dict = field(init=False, repr=False)
    predicted_bits: dict = field(init=False, repr=False)
    fold_conv_errors = True  # the datapath's conv error: GEMM into columns, then col2im

    def __post_init__(self):
        super().__post_init__()
        if not isinstance(self.hardware, HardwareParams):
            raise TypeError(f"hardware must be a HardwareParams; got {self.hardware!r}")
        self.stats, self.predicted_bits = {}, {}
        self._layer, self._phases, self._phase = None, [], "unknown"

    def enter(self, layer, phases: tuple[str, ...]) -> None:
        """The GEMMs (or the update) that follow belong to `layer`, in the order of `phases`."""
        self._layer, self._phases = layer, list(phases)
        self._phase = self._phases[0]

    def _site(self) -> SiteStats:
        return self.stats.setdefault((self._layer, self._phase), SiteStats())

    def matmul(self, a, b) -> np.ndarray:
        if self._phases:
            self._phase = self._phases.pop(0)
        acc, saturated = saturating_matmul(a, b, self.hardware.acc_bits, self.engine)
        site = self._site()
        site.gemms, site.outputs = site.gemms + 1, site.outputs + acc.size
        site.saturated += saturated
        return acc

    def narrow(self, acc, kind: str) -> tuple[np.ndarray, int]:
        if self.hardware.acc_bits < 32:
            acc = saturate(acc, signed_limit(self.hardware.acc_bits))
        if self.hardware.exponent == "tensor" or (self.hardware.exponent == "tile"
                                                   and acc.ndim == 4):
            # A conv error is col2im's int32 sum, whole in the buffer anyway: its own B serves.
            return super().narrow(acc, kind)
        return self._narrow_by_strategy(acc, kind, INT8_BITS)

    def round(self, x, k: int, kind: str) -> np.ndarray:
        """Golden R, except the weight gradient's rounding at an update under tile/predicted."""
        if kind != "gradient" or self.hardware.exponent == "tensor" or self._phase != "update":
            return super().round(x, k, kind)
        m_u = bitwidth(x) - k  # golden passes k = B(g32) - m_u
        values, _ = self._narrow_by_strategy(np.asarray(x), kind, m_u)
        return values

    def _narrow_by_strategy(self, acc, kind: str, keep_bits: int) -> tuple[np.ndarray, int]:
        """Narrow to `keep_bits` magnitude bits (7 for int8, m_u for a gradient) by tile or
        predicted exponent; what a predicted k leaves wider saturates at the golden result's
        largest magnitude (127, or 2**m_u that rounding up can reach), so an exact prediction
        gives the golden integers."""
        def golden_round(values, k):
            return RoundingPolicy.round(self, values, k, kind)

        shape = acc.shape
        if self.hardware.exponent == "tile":
            hw = self.hardware
            values, k = narrow_per_tile(acc.reshape(-1, shape[-1]), hw.rows, hw.cols, keep_bits,
                                        golden_round)
            return values.reshape(shape), k
        actual = bitwidth(acc)
        key = (self._layer, self._phase)
        predicted = self.predicted_bits.get(key)
        self.predicted_bits[key] = actual
        # A layer's first step has no prediction: it takes this tensor's B (the whole-tensor flow).
        k = narrowing_shift(actual if predicted is None
                            else predicted + self.hardware.exponent_headroom, keep_bits)
        limit = min(INT8_MAX, 2 ** keep_bits)
        self._site().beyond_exponent += beyond_range(acc, k, limit)
        return saturate(golden_round(acc, k), limit), k

    def finish_update(self, applied: bool) -> None:
        site = self._site()
        site.updates += 1
        site.skipped_updates += not applied

    def take_stats(self) -> dict:
        """The counts gathered since the last call, keyed by (layer, phase); starts afresh."""
        stats, self.stats = self.stats, {}
        return stats
