"""QTensor (values, exponent) and the rounding policy that narrows wide results back to int8."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .gemm import DEFAULT_ENGINE, ENGINES, int8_matmul
from .numbers import INT8_MAX, as_int_array, bitwidth, narrowing_shift
from .rounding import DEFAULT_LFSR_LANES, ROUNDING_MODES, LfsrLanes, shift_round


@dataclass(frozen=True)
class QTensor:
    """Integer values `v` with one exponent `s` for the whole tensor: it means v * 2**s."""

    values: np.ndarray
    exp: int

    def __post_init__(self):
        object.__setattr__(self, "values", as_int_array(self.values, "QTensor.values"))
        if isinstance(self.exp, bool) or not isinstance(self.exp, (int, np.integer)):
            raise TypeError(f"QTensor.exp must be a Python int; got {self.exp!r}")
        object.__setattr__(self, "exp", int(self.exp))

    @property
    def shape(self) -> tuple[int, ...]:
        return self.values.shape


TENSOR_KINDS = ("activation", "error", "gradient", "loss")


@dataclass
class RoundingPolicy:
    """Which rounding mode each tensor kind uses, the LFSR lanes shared by `stochastic`, and the
    GEMM engine every layer's int8 product runs on.

    Every rounding in training goes through one policy, so the order in which LFSR lanes are
    consumed is fixed by the training loop alone and every backend reproduces it. The engine is
    chosen here, explicitly, rather than read from a module global; all engines are exact.
    """

    activation: str = "pseudo"
    error: str = "pseudo"
    gradient: str = "pseudo"
    loss: str = "pseudo"
    seed: int = 0
    n_lanes: int = DEFAULT_LFSR_LANES
    engine: str = DEFAULT_ENGINE
    lanes: LfsrLanes = field(init=False)

    fold_conv_errors = False
    """Whether a stride-1 conv error runs as the datapath computes it, GEMM E @ W^T into columns
    then col2im, rather than as one GEMM over the padded error (the same integers: exact sums
    add in any order). A policy that models the datapath's GEMMs sets it (its accumulators
    saturate in k order, and it counts per hardware GEMM)."""

    def __post_init__(self):
        for kind in TENSOR_KINDS:
            mode = getattr(self, kind)
            if mode not in ROUNDING_MODES:
                raise ValueError(
                    f"{kind} rounding mode must be one of {ROUNDING_MODES}; got {mode!r}"
                )
        if self.engine not in ENGINES:
            raise ValueError(f"GEMM engine must be one of {sorted(ENGINES)}; got {self.engine!r}")
        self.lanes = LfsrLanes(self.seed, self.n_lanes)

    def matmul(self, a, b) -> np.ndarray:
        """Exact int8 x int8 -> int32 product on this policy's engine."""
        return int8_matmul(a, b, engine=self.engine)

    def round(self, x, k: int, kind: str) -> np.ndarray:
        """R(x, k, mode of `kind`)."""
        return shift_round(x, k, getattr(self, kind), self.lanes)

    def narrow(self, acc, kind: str) -> tuple[np.ndarray, int]:
        """Round an int32 result to int8 by k = max(0, B(acc) - 7); return (values, k)."""
        k = narrowing_shift(bitwidth(acc), INT8_MAX.bit_length())
        return self.round(acc, k, kind), k
