"""Shift-and-round R(x, k, mode) of SPEC.md and the LFSR lanes behind its stochastic mode."""

from __future__ import annotations

import numpy as np

from . import compiled
from .elementwise import (
    LFSR_TAPS, int8_clamp, lfsr_step, nearest_quotient, pseudo_round_up, signed_round,
    stochastic_round_up,
)
from .numbers import (
    as_int_array, check_shift, count, namespace, saturate_int8,
    value_range,
)

ROUNDING_MODES = ("nearest", "stochastic", "pseudo")
DEFAULT_LFSR_LANES = 16


class LfsrLanes:
    """L independent 32-bit Galois LFSRs; element j of a tensor uses lane j % L.

    A lane steps once per element it rounds and `r` is the low k bits of its new state, so the
    RTL's per-lane LFSRs reproduce this sequence exactly. State persists across tensors.
    """

    def __init__(self, seed: int, n_lanes: int = DEFAULT_LFSR_LANES):
        if isinstance(n_lanes, bool) or not isinstance(n_lanes, (int, np.integer)) or n_lanes < 1:
            raise ValueError(f"n_lanes must be a positive integer; got {n_lanes!r}")
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
            raise TypeError(f"seed must be an integer; got {seed!r}")
        states = (int(seed) + np.arange(int(n_lanes), dtype=np.int64)) & 0xFFFFFFFF
        states[states == 0] = 1
        self._states = states.astype(np.uint32)

    @property
    def n_lanes(self) -> int:
        return self._states.size

    @property
    def states(self) -> np.ndarray:
        """The current state of every lane (a copy)."""
        return self._states.copy()

    @states.setter
    def states(self, values) -> None:
        values = np.asarray(values)
        if values.shape != self._states.shape or not np.issubdtype(values.dtype, np.integer):
            raise ValueError(
                f"LFSR states must be {self.n_lanes} integers; got shape {values.shape} "
                f"of dtype {values.dtype}"
            )
        self._states = values.astype(np.uint32)

    def copy(self) -> "LfsrLanes":
        twin = LfsrLanes(1, self.n_lanes)
        twin._states = self._states.copy()
        return twin

    def draw(self, count: int, k: int, like=None):
        """Step lanes for `count` elements in row-major order; return each element's low k bits
        (numpy int64), or for a `like` tensor outside host memory (a GPU's) `draw_on` there."""
        if getattr(getattr(like, "device", None), "type", "cpu") != "cpu":
            return self.draw_on(count, k, like)
        drawn = compiled.draw(self._states, count, k)
        if drawn is not None:
            return drawn
        sequence = _lfsr_sequence(self._states, -(-count // self.n_lanes))
        self._states[:] = _final_states(sequence, self._states, count)
        return sequence.reshape(-1)[:count].astype(np.int64) & ((1 << k) - 1)

    def draw_on(self, count: int, k: int, like):
        """`draw` as tensor ops on the device of tensor `like`, vectorised over lanes (int64
        holding the 32-bit states): the draws stay there, only the L final states come back."""
        xp = namespace(like)
        states = xp.asarray(self._states.astype(np.int64), device=like.device)
        sequence = _lfsr_sequence(states, -(-count // self.n_lanes))
        self._states[:] = _final_states(sequence, states, count).cpu().numpy()
        return sequence.reshape(-1)[:count] & ((1 << k) - 1)


def _final_states(sequence, states, count: int):
    """Each lane's state after `count` elements: its last row in `sequence`, or unchanged."""
    n_lanes = states.shape[0]
    steps = [(count - lane + n_lanes - 1) // n_lanes for lane in range(n_lanes)]
    flat = sequence.reshape(-1)
    return namespace(states).stack(
        [flat[(step - 1) * n_lanes + lane] if step else states[lane]
         for lane, step in enumerate(steps)])


def _apply_linear(columns, states):
    """The GF(2)-linear map with images `columns` of the 32 unit states, applied to `states`."""
    out = states ^ states  # zeros of the same kind
    for bit in range(32):
        out ^= ((states >> bit) & 1) * columns[bit]
    return out


def _lfsr_sequence(states, rows: int):
    """The next `rows` states of every lane, as if stepped one by one (numpy uint32, or int64
    tensors holding 32-bit states on any device).

    A Galois LFSR step is linear over GF(2), so the states n..2n-1 are A**n applied to the
    states 0..n-1: doubling fills the table in log2(rows) rounds instead of `rows` steps.
    """
    xp = namespace(states)
    device = getattr(states, "device", None)
    sequence = xp.empty((rows, states.shape[0]), dtype=states.dtype, device=device)
    if rows == 0:
        return sequence
    sequence[0] = lfsr_step(states)
    units = xp.asarray([1 << bit for bit in range(32)], dtype=states.dtype, device=device)
    columns = lfsr_step(units)  # A applied to e_i
    filled = 1
    while filled < rows:
        count = min(filled, rows - filled)
        sequence[filled : filled + count] = _apply_linear(columns, sequence[:count])
        columns = _apply_linear(columns, columns)  # A**n -> A**(2n)
        filled += count
    return sequence


def _working_copy(values, k: int, xp):
    """x as int32 when every step below stays inside int32 (half the memory traffic), else int64."""
    if count(values) == 0:
        return xp.astype(values, xp.int64)
    low, high = value_range(values)
    bound = 2**31 - (1 << max(k - 1, 0))  # `nearest` adds 2**(k-1); abs(-2**31) would wrap
    dtype = xp.int32 if -bound < low and high < bound else xp.int64
    return xp.astype(values, dtype)


def shift_round(x, k, mode: str = "pseudo", lanes: LfsrLanes | None = None):
    """R(x, k, mode): shift an integer tensor right by k, round by `mode`, saturate to int8.

    `nearest` rounds half up with an arithmetic shift; `pseudo` and `stochastic` work on the
    magnitude and restore the sign, so they are unbiased for negative inputs too.
    Works on numpy arrays and torch tensors alike; stochastic draws come from the numpy lanes.
    Arrays in host memory run the same per-element functions compiled into one pass
    (`compiled`), others (and all when that is off) as array operations.
    """
    x = as_int_array(x)
    xp = namespace(x)
    k = check_shift(k)
    if mode not in ROUNDING_MODES:
        raise ValueError(f"rounding mode must be one of {ROUNDING_MODES}; got {mode!r}")
    if mode == "stochastic" and not isinstance(lanes, LfsrLanes):
        raise ValueError("mode 'stochastic' needs lanes=LfsrLanes(seed) to draw random bits from")
    if k == 0:
        return saturate_int8(x)
    draws = lanes.draw(count(x), k, x).reshape(x.shape) if mode == "stochastic" else None
    if xp.isdtype(x.dtype, "signed integer"):
        rounded = compiled.shift_round(x, k, mode, draws)
        if rounded is not None:
            return rounded
    values = _working_copy(x, k, xp)
    if mode == "nearest":
        return xp.astype(int8_clamp(nearest_quotient(values, k)), xp.int8)
    magnitude = xp.abs(values)
    fraction = magnitude & ((1 << k) - 1)
    if mode == "pseudo":
        up = pseudo_round_up(fraction, k)
    else:
        up = stochastic_round_up(fraction, draws if xp is np else xp.asarray(draws, device=x.device))
    return xp.astype(signed_round(values, magnitude, k, up), xp.int8)
