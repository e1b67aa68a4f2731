"""Random stimulus with the corner cases every bench must hit (int8 +-127, int32 extremes, zeros),
and the golden model's expected output streams for it.

Simulator-free (numpy and golden only), so the cocotb benches and the in-process Amaranth tier
build the same stimulus and check it against the same expectations.
"""

from __future__ import annotations

import numpy as np

from niti_hw.golden import (INT8_MAX, MAX_SHIFT, MaxPool2d, QTensor, ReLU, bitwidth, ce_gradient,
                            int8_matmul, shift_round)
from niti_hw.golden.loss import ROUND_SHIFT as LOSS_ROUND_SHIFT
from niti_hw.golden.numbers import signed_limit
from niti_hw.rtl.layouts import SHIFT
from niti_hw.perf.tiling import tile_grid

INT8_EXTREMES = np.array([-127, 127, 0, 1, -1])
INT32_EXTREMES = np.array([-2**31, 2**31 - 1, -2**31 + 1, 0, 1, -1, 127, -127, 128, -128, 255, -255])


def int8_matrix(rng: np.random.Generator, shape, kind: str) -> np.ndarray:
    if kind == "zeros":
        return np.zeros(shape, dtype=np.int64)
    if kind == "extremes":
        return rng.choice(INT8_EXTREMES[:2], size=shape)
    if kind == "mixed":
        out = rng.integers(-127, 128, size=shape)
        mask = rng.random(shape) < 0.3
        out[mask] = rng.choice(INT8_EXTREMES, size=int(mask.sum()))
        return out
    return rng.integers(-127, 128, size=shape)


def int32_tensor(rng: np.random.Generator, size: int, kind: str) -> np.ndarray:
    """Values of one tensor; `kind` picks the magnitude profile so every B(V) in 0..32 appears."""
    if kind == "zeros":
        return np.zeros(size, dtype=np.int64)
    if kind == "extremes":
        return rng.choice(INT32_EXTREMES, size=size)
    bits = int(rng.integers(0, 33)) if kind == "random" else int(kind)
    high = 2 ** bits if bits < 32 else 2**31
    out = rng.integers(-high + 1, high, size=size, dtype=np.int64) if bits else np.zeros(size, np.int64)
    if bits == 32 and rng.random() < 0.5:
        out[rng.integers(0, size)] = -2**31
    return out


INT32_KINDS = [str(bits) for bits in range(MAX_SHIFT + 1)] + ["zeros", "extremes", "random"]


def padded_rows(values: np.ndarray, lanes: int, pad: np.ndarray | None = None) -> np.ndarray:
    """`values` cut into beats of `lanes`, the last one filled from `pad` (zeros by default)."""
    width = -(-values.size // lanes) * lanes
    out = np.zeros(width, dtype=np.int64) if pad is None else pad[:width].copy()
    out[:values.size] = values
    return out.reshape(-1, lanes)


def detector_stream(p, rng: np.random.Generator, count: int):
    """`count` tensors (every magnitude profile; most fit one beat, every fourth spans up to four)
    as input beats, and the golden B of each, one output beat per tensor."""
    beats, expected = [], []
    for n in range(count):
        longest = 4 * p.lanes if n % 4 == 3 else p.lanes
        values = int32_tensor(rng, int(rng.integers(1, longest + 1)), INT32_KINDS[n % len(INT32_KINDS)])
        chunks = padded_rows(values, p.lanes)  # the detector has no `keep`: zero padding
        beats += [{"data": chunk.tolist(), "last": int(c == len(chunks) - 1)}
                  for c, chunk in enumerate(chunks)]
        expected.append(bitwidth(values))
    return beats, expected


REFUSED_EVERY = 17  # every 17th rounding tensor gets a shift above MAX_SHIFT


def rounding_tensors(p, rng: np.random.Generator, beat_budget: int):
    """(values, k) per tensor and the input beats, until `beat_budget` beats.

    k runs through 0..32 against every magnitude profile; every REFUSED_EVERY-th tensor gets a k
    above 32 (up to the field's maximum). Lanes outside a partial final beat's `keep` hold random
    garbage.
    """
    tensors, beats = [], []
    while len(beats) < beat_budget:
        n = len(tensors)
        k = n % (MAX_SHIFT + 1)
        if n % REFUSED_EVERY == REFUSED_EVERY - 1:
            k = int(rng.integers(MAX_SHIFT + 1, 2 ** SHIFT.width))
        values = int32_tensor(rng, int(rng.integers(1, 4 * p.lanes + 1)),
                              INT32_KINDS[(n // (MAX_SHIFT + 1) + n) % len(INT32_KINDS)])
        chunks = padded_rows(values, p.lanes, pad=int32_tensor(rng, values.size + p.lanes, "random"))
        for c, chunk in enumerate(chunks):
            keep = min(p.lanes, values.size - c * p.lanes)
            beats.append({"data": chunk.tolist(), "k": k, "keep": (1 << keep) - 1,
                          "last": int(c == len(chunks) - 1)})
        tensors.append((values, k))
    return tensors, beats


def rounding_expected(p, mode: str, lanes, tensors) -> list[dict]:
    """The golden output stream of ShiftRound; lanes outside `keep` are don't-cares (None).

    A tensor the golden model refuses (k > 32) must come back refused: zero data, `keep` = 0.
    `lanes` (stochastic mode) advances as the unit's LFSRs do.
    """
    beats = []
    for values, k in tensors:
        try:
            result = shift_round(values, k, mode, lanes=lanes if mode == "stochastic" else None)
        except ValueError:
            if k <= MAX_SHIFT:
                raise
            result = None
        count = -(-values.size // p.lanes)
        for c in range(count):
            if result is None:
                chunk, keep = [0] * p.lanes, 0
            else:
                part = result[c * p.lanes:(c + 1) * p.lanes].astype(int).tolist()
                chunk, keep = part + [None] * (p.lanes - len(part)), (1 << len(part)) - 1
            beats.append({"data": chunk, "keep": keep, "last": int(c == count - 1), "k": k})
    return beats


def array_rows(a: np.ndarray, b: np.ndarray, p) -> list[dict]:
    """The golden result rows of one GEMM as the array drains them: tile by tile, zero-padded."""
    c = int8_matmul(a.astype(np.int8), b.astype(np.int8)).astype(np.int64)
    grid = tile_grid(*c.shape, p)
    padded = np.zeros((grid[-1][0] + p.rows, grid[-1][1] + p.cols), dtype=np.int64)
    padded[:c.shape[0], :c.shape[1]] = c
    return [{"c": padded[i0 + r, j0:j0 + p.cols].tolist(), "last": int(r == p.rows - 1)}
            for i0, j0 in grid for r in range(p.rows)]


def random_weights(rng: np.random.Generator, size: int, bits: int):
    """(W, g) for the weight-update unit: W over the whole `bits`-bit range, a fifth of them at
    or next to the extremes and zero; g over int8, a tenth of them zero."""
    limit = signed_limit(bits)
    w = rng.integers(-limit, limit + 1, size)
    edge = rng.random(size) < 0.2
    w[edge] = rng.choice([-limit, limit, -limit + 1, limit - 1, 0, 1, -1], int(edge.sum()))
    g = rng.integers(-INT8_MAX, INT8_MAX + 1, size)
    g[rng.random(size) < 0.1] = 0
    return w, g


def saturating_weights(bits: int):
    """(W, g) pairs where W - g leaves the `bits`-bit range by up to 127 both ways, lands exactly
    on a limit, or stays one inside it; and the limits with g = 0."""
    limit = signed_limit(bits)
    pairs = [(limit, -INT8_MAX), (-limit, INT8_MAX), (limit, -1), (-limit, 1),
             (limit - 1, -1), (-limit + 1, 1), (limit - 126, -INT8_MAX), (-limit + 126, INT8_MAX),
             (limit - 127, -INT8_MAX), (-limit + 127, INT8_MAX), (limit, INT8_MAX),
             (-limit, -INT8_MAX), (limit, 0), (-limit, 0), (limit, 1), (-limit, -1),
             (0, INT8_MAX), (0, -INT8_MAX)]
    w, g = zip(*pairs)
    return np.array(w), np.array(g)


INT8_KINDS = ("random", "mixed", "extremes", "zeros")


def relu_tensors(p, rng: np.random.Generator, count: int) -> list[np.ndarray]:
    """`count` int8 tensors of 1..4*lanes values, every `int8_matrix` kind in turn, already cut
    into beats: a partial final beat is filled with random int8 values, which the unit (no `keep`)
    passes through like any other."""
    tensors = []
    for n in range(count):
        size = int(rng.integers(1, 4 * p.lanes + 1))
        values = int8_matrix(rng, size, INT8_KINDS[n % len(INT8_KINDS)])
        tensors.append(padded_rows(values, p.lanes, pad=int8_matrix(rng, size + p.lanes, "random")))
    return tensors


def _mask_bits(mask: np.ndarray) -> int:
    return sum(int(bit) << n for n, bit in enumerate(mask))


def relu_forward_stream(p, tensors: list[np.ndarray]):
    """Input beats of `Relu` and the golden output beats: `layers.ReLU.forward` and the mask it
    keeps for its backward pass."""
    beats, expected = [], []
    for rows in tensors:
        layer = ReLU()
        y = layer.forward(QTensor(rows, 0), None).values
        for n, row in enumerate(rows):
            last = int(n == len(rows) - 1)
            beats.append({"data": row.tolist(), "last": last})
            expected.append({"data": y[n].astype(int).tolist(), "mask": _mask_bits(layer._mask[n]),
                             "last": last})
    return beats, expected


def relu_backward_stream(p, rng: np.random.Generator, tensors: list[np.ndarray]):
    """Input beats of `ReluBackward` (random int8 errors and the forward mask of `tensors`) and
    the golden output beats of `layers.ReLU.backward`."""
    beats, expected = [], []
    for n, rows in enumerate(tensors):
        layer = ReLU()
        layer.forward(QTensor(rows, 0), None)
        e = int8_matrix(rng, rows.shape, INT8_KINDS[(n + 1) % len(INT8_KINDS)])
        back = layer.backward(QTensor(e, 0), None).values
        for r in range(len(rows)):
            last = int(r == len(rows) - 1)
            beats.append({"e": e[r].tolist(), "mask": _mask_bits(layer._mask[r]), "last": last})
            expected.append({"data": back[r].astype(int).tolist(), "last": last})
    return beats, expected


def pool_tensors(p, rng: np.random.Generator, count: int, kernel: int) -> list[np.ndarray]:
    """`count` NHWC int8 tensors for kernel x kernel pools: 1..2 images, height and width from
    kernel to 3 * kernel + 1 (edges the pool leaves out), lanes or 2 * lanes channels. Every
    fourth tensor holds only -1..1 and every fourth +-127 only, so windows tie often."""
    tensors = []
    for n in range(count):
        shape = (int(rng.integers(1, 3)), int(rng.integers(kernel, 3 * kernel + 2)),
                 int(rng.integers(kernel, 3 * kernel + 2)), p.lanes * int(rng.integers(1, 3)))
        kind = ("random", "ties", "mixed", "extremes")[n % 4]
        tensors.append(rng.integers(-1, 2, shape) if kind == "ties" else int8_matrix(rng, shape, kind))
    return tensors


def _pool_windows(p, shape, kernel: int):
    """(n, oh, ow, channel slice) of every window's lane group, in stream order."""
    n, h, w, c = shape
    return [(image, oh, ow, slice(g * p.lanes, (g + 1) * p.lanes))
            for image in range(n) for oh in range(h // kernel) for ow in range(w // kernel)
            for g in range(c // p.lanes)]


def pool_forward_stream(p, kernel: int, tensors: list[np.ndarray]):
    """Input beats of `MaxPool` (each window's elements in offset order) and the golden output
    beats: `layers.MaxPool2d.forward` and the winning offsets it keeps for the backward pass."""
    beats, expected = [], []
    for x in tensors:
        layer = MaxPool2d(kernel)
        y = layer.forward(QTensor(x, 0), None).values
        windows = _pool_windows(p, x.shape, kernel)
        for w, (image, oh, ow, lanes) in enumerate(windows):
            last = int(w == len(windows) - 1)
            for offset in range(kernel * kernel):
                i, j = divmod(offset, kernel)
                beats.append({"data": x[image, oh * kernel + i, ow * kernel + j, lanes].tolist(),
                              "last": int(last and offset == kernel * kernel - 1)})
            expected.append({"data": y[image, oh, ow, lanes].astype(int).tolist(),
                             "index": layer._winner[image, oh, ow, lanes].astype(int).tolist(),
                             "last": last})
    return beats, expected


def pool_backward_stream(p, kernel: int, rng: np.random.Generator, tensors: list[np.ndarray]):
    """Input beats of `MaxPoolBackward` (random int8 errors and the forward winners of `tensors`)
    and the golden output beats of `layers.MaxPool2d.backward`, window by window."""
    beats, expected = [], []
    for n, x in enumerate(tensors):
        layer = MaxPool2d(kernel)
        y = layer.forward(QTensor(x, 0), None).values
        e = int8_matrix(rng, y.shape, INT8_KINDS[n % len(INT8_KINDS)])
        routed = layer.backward(QTensor(e, 0), None).values
        windows = _pool_windows(p, x.shape, kernel)
        for w, (image, oh, ow, lanes) in enumerate(windows):
            last = int(w == len(windows) - 1)
            beats.append({"e": e[image, oh, ow, lanes].tolist(),
                          "index": layer._winner[image, oh, ow, lanes].astype(int).tolist(),
                          "last": last})
            for offset in range(kernel * kernel):
                i, j = divmod(offset, kernel)
                expected.append({"data": routed[image, oh * kernel + i, ow * kernel + j,
                                                lanes].astype(int).tolist(),
                                 "last": int(last and offset == kernel * kernel - 1)})
    return beats, expected


LOSS_EXPONENTS = (-32768, -60, -49, -48, -47, -40, -39, -38, -21, -20, -19, -8, -7, -6, -1, 0,
                  8, 14, 15, 16, 32767)
"""s on and around every boundary of the loss unit: the Taylor branch's cut (from u = 20), its
cap (u = 48), the branch change (-7 / -6), the base-2 shift's ends (-6, 14, 15) and the 16-bit
field's ends."""
LOSS_KINDS = ("random", "mixed", "extremes", "equal", "zeros")
LOSS_EXACT = {"s": 0, "classes": 4, "a": np.array([[127, 127, 121, 121], [121, 127, 121, 127]]),
              "y": np.array([0, 3])}
"""Divisions without remainder and odd quotients: t = 1023, 1023, 1, 1 (x = 183, 183, 174, 174)
sum to C = 2048, so every quotient's last bit comes from a remainder of exactly 0."""
LOSS_TIES = [{"s": s, "classes": 2, "a": np.array([[-1, -2], [-2, -1], [-1, -1], [2, 1]]),
              "y": np.array([0, 1, 1, 0])} for s in (-20, -21, -39, -40, -41, -48)]
"""Near ties under the Taylor branch's cut: the terms differ in their last bits only, where the
cut (one bit more when the largest logit is negative) decides which quotient rounds down."""


def loss_logits(rng: np.random.Generator, shape, kind: str) -> np.ndarray:
    """int8 logits of one `kind`: `int8_matrix`'s, or every row one value repeated."""
    if kind == "equal":
        return np.repeat(rng.integers(-127, 128, (shape[0], 1)), shape[1], axis=1)
    return int8_matrix(rng, shape, kind)


def loss_tensors(rng: np.random.Generator, count: int, max_classes: int,
                 boundaries: bool = True) -> list[dict]:
    """`count` valid tensors (s, classes, logits a, labels y), every LOSS_KINDS profile in turn,
    1 class, `max_classes` and random counts; s runs through LOSS_EXPONENTS (each twice) first
    when `boundaries` (after LOSS_EXACT and LOSS_TIES, where they fit), else is random (mostly
    -60..24, now and then anywhere in 16 bits)."""
    tensors = [t for t in [LOSS_EXACT] + LOSS_TIES
               if boundaries and t["classes"] <= max_classes][:count]
    for n in range(count - len(tensors)):
        classes = (1, max_classes)[n % 2] if n % 3 == 0 else int(rng.integers(1, max_classes + 1))
        samples = int(rng.integers(1, 4))
        if boundaries and n < 2 * len(LOSS_EXPONENTS):
            s = LOSS_EXPONENTS[n // 2]
        else:
            s = int(rng.integers(-60, 25) if rng.random() < 0.8 else rng.integers(-2**15, 2**15))
        tensors.append({"s": s, "classes": classes,
                        "a": loss_logits(rng, (samples, classes), LOSS_KINDS[n % len(LOSS_KINDS)]),
                        "y": rng.integers(0, classes, samples)})
    return tensors


def loss_refused_tensors(rng: np.random.Generator, max_classes: int) -> list[dict]:
    """Tensors the unit refuses in part or whole: rows with a label >= classes or a logit of
    -128 among a valid row's neighbours; classes 0 and every count above `max_classes` the field
    holds."""
    label_limit = 1 << max_classes.bit_length()
    tensors = []
    for classes in sorted({1, max_classes, int(rng.integers(1, max_classes + 1))}):
        a = int8_matrix(rng, (4, classes), "mixed")
        y = rng.integers(0, classes, 4)
        y[1] = int(rng.integers(classes, label_limit))
        a[2, int(rng.integers(0, classes))] = -128
        tensors.append({"s": int(rng.integers(-30, 10)), "classes": classes, "a": a, "y": y})
    for classes in [0] + list(range(max_classes + 1, label_limit)):
        samples = int(rng.integers(1, 3))
        tensors.append({"s": 0, "classes": classes,
                        "a": int8_matrix(rng, (samples, max_classes), "random"),
                        "y": rng.integers(0, label_limit, samples)})
    return tensors


def loss_golden(tensor: dict, max_classes: int, mode: str, lanes) -> np.ndarray:
    """The errors golden gives a tensor (its rounding draws from `lanes`), with zeros where the
    unit refuses: every row when classes lie outside 1..max_classes, else each row with a label
    >= classes or a logit of -128, whose draws golden still takes (a valid row in its place)."""
    a, y, classes = np.asarray(tensor["a"]), np.asarray(tensor["y"]), tensor["classes"]
    if not 1 <= classes <= max_classes:
        return shift_round(np.zeros((len(y), classes), np.int64), LOSS_ROUND_SHIFT, mode, lanes)
    refused = (y >= classes) | (a == -128).any(axis=1)
    e, _ = ce_gradient(np.where(a == -128, 0, a), tensor["s"], np.where(refused, 0, y), mode,
                       lanes)
    e[refused] = 0
    return e


def lane_beats(values: np.ndarray, lanes: int) -> list[dict]:
    """Values in row-major order cut into beats of `lanes`; the final one partial (`keep`) with
    `last`; lanes it leaves out are don't-cares (None)."""
    flat, beats = np.asarray(values).reshape(-1).astype(int).tolist(), []
    for start in range(0, len(flat), lanes):
        part = flat[start:start + lanes]
        beats.append({"data": part + [None] * (lanes - len(part)), "keep": (1 << len(part)) - 1,
                      "last": int(start + lanes >= len(flat))})
    return beats


def loss_stream(p, max_classes: int, rng: np.random.Generator, tensors: list[dict], mode: str,
                lanes):
    """Input beats of `LossGradient` (a `("cfg", ...)` beat, then one beat per row, the logits
    beyond `classes` random int8 including -128) and the golden output beats."""
    beats, expected = [], []
    for tensor in tensors:
        a, y, classes = np.asarray(tensor["a"]), np.asarray(tensor["y"]), tensor["classes"]
        beats.append(("cfg", {"s": tensor["s"], "classes": classes}))
        for n in range(len(y)):
            row = a[n, :max_classes].tolist()
            pad = rng.integers(-128, 128, max_classes - len(row)).tolist()
            beats.append({"a": row + pad, "y": int(y[n]), "last": int(n == len(y) - 1)})
        expected += lane_beats(loss_golden(tensor, max_classes, mode, lanes), p.lanes)
    return beats, expected
