"""Integer cross-entropy gradient of SPEC.md (the paper's Section 3.4), int64 arithmetic only."""

from __future__ import annotations

import numpy as np

from .numbers import as_int_array, check_int8_range, namespace
from .rounding import LfsrLanes, shift_round

LOG2E_Q15 = 47274
"""round(log2(e) * 2**15): turns a * 2**s into a base-2 exponent with 15 fraction bits."""
LOG2E_FRACTION_BITS = 15
TAYLOR_MAX_EXPONENT = -7
"""s at or below this takes the Taylor branch, above it the base-2 one."""
BASE2_WINDOW = 10
"""Classes more than this many powers of two below the top get probability 0 (t_i = 2**xh - 1)."""
TAYLOR_MAX_BITS = 40
"""Taylor terms are cut to 40 bits so that t << 11 and the row sum fit in int64."""
ERROR_EXPONENT = -7
ROUND_SHIFT = 4
"""The final R(e, 4, mode) that brings e from 2**11 per unit down to int8 at ERROR_EXPONENT."""
QUOTIENT_SHIFT = ROUND_SHIFT - ERROR_EXPONENT
"""e_i = (t_i << 11) // C: probabilities in units of 2**-11."""


def _base2_terms(a, s: int, xp):
    x = LOG2E_Q15 * xp.astype(a, xp.int64)
    if s >= LOG2E_FRACTION_BITS:
        # Every x_i below the row maximum is then >= 47274 under it, so xh_i = 0 for any shift
        # >= 0: capping the shift at 32 changes nothing and keeps x inside int64.
        x = x << min(s - LOG2E_FRACTION_BITS, 32)
    else:
        x = x >> (LOG2E_FRACTION_BITS - s)
    top = xp.max(x, axis=1, keepdims=True)
    exponent = xp.clip(x - (top - BASE2_WINDOW), 0, None)
    return (1 << exponent) - 1


def _taylor_terms(a, s: int, xp):
    # 2**(1-2s) outgrows int64 for s <= -31, so build each term as a Python int first.
    rows = []
    for row in a.tolist():
        terms = [2 ** (1 - 2 * s) + v * 2 ** (1 - s) + v * v for v in row]
        excess = max(terms).bit_length() - TAYLOR_MAX_BITS
        rows.append([t >> excess for t in terms] if excess > 0 else terms)
    return xp.reshape(xp.asarray(rows, dtype=xp.int64, device=a.device), a.shape)


def ce_gradient(a, s, y, mode: str = "pseudo", lanes: LfsrLanes | None = None):
    """Gradient of softmax cross-entropy w.r.t. the last layer's int8 output, as int8 * 2**-7.

    Returns (e, -7): e stands for (softmax(a * 2**s) - onehot(y)) * 2**7, and each row sums to 0
    before the final rounding R(e, 4, mode).
    """
    a = as_int_array(a, "a")
    y = as_int_array(y, "y")
    xp = namespace(a)
    if a.ndim != 2:
        raise ValueError(f"ce_gradient needs a 2-D a (samples, classes); got shape {a.shape}")
    if y.shape != (a.shape[0],):
        raise ValueError(
            f"ce_gradient needs one label per row: y of shape ({a.shape[0]},); got {y.shape}"
        )
    if y.shape[0] and (int(y.min()) < 0 or int(y.max()) >= a.shape[1]):
        raise ValueError(
            f"labels must lie in 0..{a.shape[1] - 1}; got range [{int(y.min())}, {int(y.max())}]"
        )
    if isinstance(s, bool) or not isinstance(s, (int, np.integer)):
        raise TypeError(f"exponent s must be an integer; got {s!r}")
    check_int8_range(a, "a")
    s = int(s)
    t = _base2_terms(a, s, xp) if s > TAYLOR_MAX_EXPONENT else _taylor_terms(a, s, xp)
    total = xp.sum(t, axis=1, keepdims=True)
    e = (t << QUOTIENT_SHIFT) // total
    rows = xp.arange(a.shape[0], device=a.device)
    e[rows, y] -= xp.sum(e, axis=1)
    return shift_round(e, ROUND_SHIFT, mode, lanes), ERROR_EXPONENT
