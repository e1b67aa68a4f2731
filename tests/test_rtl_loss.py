"""Fast tier of the loss gradient unit: `LossGradient` in `amaranth.sim`, bit-exact against golden
`ce_gradient` (hypothesis-random logits, labels and s; every branch boundary of s; all-equal and
+-127 logits; 1 class and the most), refusals, backpressure, no extra beat, and its cycles
against niti_hw.perf.timing."""

import logging
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from niti_hw.golden import LfsrLanes
from niti_hw.params import HardwareParams
from niti_hw.perf.timing import loss_cycles, loss_row_cycles

pytest.importorskip("amaranth", reason="needs the rtl extra: pip install 'niti-hw[rtl]'")
pytest.importorskip("cocotb", reason="needs the rtl extra: pip install 'niti-hw[rtl]'")

from niti_hw.rtl.loss_gradient import DEFAULT_MAX_CLASSES, MAX_CLASSES, LossGradient  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "sim"))
from harness import DRAIN, PATIENCE, Scoreboard  # noqa: E402
from inprocess import run_stream, run_testbench  # noqa: E402
from measure_cycles import edges  # noqa: E402
from stimulus import (LOSS_EXACT, LOSS_EXPONENTS, LOSS_TIES,  # noqa: E402
                      loss_refused_tensors, loss_stream, loss_tensors)

P = HardwareParams(rows=4, cols=4, lanes=4, lfsr_lanes=8)
MODES = ("nearest", "pseudo", "stochastic")


def check(tensors, mode="pseudo", p=P, max_classes=DEFAULT_MAX_CLASSES, gap=0.3, stall=0.3,
          seed=0) -> int:
    """Stream `tensors` through a fresh unit with valid gaps and backpressure, compare every beat
    with golden (a drain window fails on an extra one); returns the beats compared."""
    rng = np.random.default_rng(seed)
    lanes = LfsrLanes(p.lfsr_seed, p.lfsr_lanes)
    beats, expected = loss_stream(p, max_classes, rng, tensors, mode, lanes)
    got = run_stream(LossGradient(p, max_classes, mode), beats, len(expected),
                     f"loss_gradient {mode}", gap=gap, stall=stall, seed=seed)
    board = Scoreboard(f"loss_gradient {mode}", logging.getLogger(__name__))
    board.compare_beats("output stream", got, expected)
    return board.vectors


INT8 = st.integers(-127, 127)
LOGIT = st.one_of(INT8, st.sampled_from([-127, 127, 0]))
EXPONENT = st.one_of(st.sampled_from(LOSS_EXPONENTS), st.integers(-60, 24),
                     st.integers(-2**15, 2**15 - 1))


@st.composite
def tensors(draw, max_classes=DEFAULT_MAX_CLASSES):
    classes = draw(st.integers(1, max_classes))
    samples = draw(st.integers(1, 3))
    row = st.one_of(st.lists(LOGIT, min_size=classes, max_size=classes),
                    LOGIT.map(lambda v: [v] * classes))  # all equal
    a = np.array(draw(st.lists(row, min_size=samples, max_size=samples)))
    y = np.array(draw(st.lists(st.integers(0, classes - 1), min_size=samples,
                               max_size=samples)))
    return {"s": draw(EXPONENT), "classes": classes, "a": a, "y": y}


@settings(max_examples=25)
@given(st.lists(tensors(), min_size=1, max_size=2), st.integers(0, 2**16))
def test_matches_golden_on_random_tensors(batch, seed):
    assert check(batch, seed=seed) == sum(-(-t["a"].size // P.lanes) for t in batch)


@pytest.mark.parametrize("mode", MODES)
def test_matches_golden_at_every_boundary(mode):
    """Every LOSS_EXPONENTS value twice (all-equal, +-127, zero, mixed and random logits), one
    class and ten, divisions without remainder (LOSS_EXACT), near ties under the Taylor cut
    (LOSS_TIES), in each rounding mode; stochastic lanes carry over from tensor to tensor."""
    tensors = loss_tensors(np.random.default_rng(MODES.index(mode)),
                           2 * len(LOSS_EXPONENTS) + len(LOSS_TIES) + 7, DEFAULT_MAX_CLASSES)
    assert tensors[:1 + len(LOSS_TIES)] == [LOSS_EXACT] + LOSS_TIES
    assert {t["s"] for t in tensors} >= set(LOSS_EXPONENTS)
    assert {t["classes"] for t in tensors} >= {1, DEFAULT_MAX_CLASSES}
    assert check(tensors, mode, seed=1) > 40


@pytest.mark.parametrize("max_classes", [1, 3, MAX_CLASSES])
def test_other_most_classes(max_classes):
    p = P.replace(lanes=2)
    rng = np.random.default_rng(max_classes)
    tensors = loss_tensors(rng, 4, max_classes)
    tensors.append({"s": -30, "classes": max_classes, "a": rng.integers(-127, 128, (2, max_classes)),
                    "y": np.array([0, 1]) % max_classes})
    check(tensors, p=p, max_classes=max_classes, seed=max_classes)


def test_refused_input_gives_zeros_and_sets_bad_input():
    """A row with a label >= classes or a logit of -128 comes out zero, its neighbours as golden;
    classes 0 (no output) and 11..15 (zeros) refuse the tensor. `bad_input` is 0 until the first
    refusal and then stays 1 through valid tensors."""
    rng = np.random.default_rng(7)
    good = loss_tensors(rng, 2, DEFAULT_MAX_CLASSES)
    refused = loss_refused_tensors(rng, DEFAULT_MAX_CLASSES)
    assert {t["classes"] for t in refused} >= {0, 11, 15}
    check(good + refused + good, "stochastic", seed=2)
    assert set(bad_input_trace(good)) == {0}
    for tensors in (good + refused[:1] + good, good + refused[-1:] + good):
        trace = bad_input_trace(tensors)
        rise = trace.index(1)
        assert set(trace[:rise]) == {0} and set(trace[rise:]) == {1}


def bad_input_trace(tensors) -> list[int]:
    """`bad_input` in every cycle while `tensors` stream through with no gaps or backpressure."""
    beats, expected = loss_stream(P, DEFAULT_MAX_CLASSES, np.random.default_rng(0), tensors,
                                  "pseudo", LfsrLanes(P.lfsr_seed, P.lfsr_lanes))
    dut = LossGradient(P)

    async def bench(ctx):
        ctx.set(dut.o.ready, 1)
        for beat in beats:
            port = getattr(dut, beat[0]) if isinstance(beat, tuple) else dut.i
            ctx.set(port.payload, beat[1] if isinstance(beat, tuple) else beat)
            ctx.set(port.valid, 1)
            for _ in range(PATIENCE):
                _, _, ready = await ctx.tick().sample(port.ready)
                if ready:
                    break
            ctx.set(port.valid, 0)
        await ctx.tick().repeat(DRAIN)

    return [flag for flag, in run_testbench(dut, bench, watch=(dut.bad_input,))]


@pytest.mark.parametrize("samples, classes", [(1, 1), (1, 10), (3, 4), (2, 7), (4, 1)])
def test_cycles_equal_the_model(samples, classes):
    """No gaps, no backpressure: rows are taken every loss_row_cycles(classes) cycles and the
    tensor takes loss_cycles(samples, classes) from its cfg beat to its last output beat."""
    rng = np.random.default_rng(samples * 100 + classes)
    tensor = {"s": int(rng.choice(LOSS_EXPONENTS)), "classes": classes,
              "a": rng.integers(-127, 128, (samples, classes)),
              "y": rng.integers(0, classes, samples)}
    beats, expected = loss_stream(P, DEFAULT_MAX_CLASSES, rng, [tensor], "pseudo",
                                  LfsrLanes(P.lfsr_seed, P.lfsr_lanes))
    accepted, taken = edges(LossGradient(P), beats, len(expected))
    assert np.diff(accepted[1:]).tolist() == [loss_row_cycles(classes)] * (samples - 1)
    assert taken[-1] - accepted[0] + 1 == loss_cycles(samples, classes)
    assert accepted[1] - accepted[0] == 1  # the first row right after the cfg beat


@pytest.mark.parametrize("max_classes", [0, 65, True, 2.0])
def test_most_classes_is_checked(max_classes):
    with pytest.raises(ValueError, match=r"max_classes must be an int in 1\.\.64"):
        LossGradient(P, max_classes)
