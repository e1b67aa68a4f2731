"""Relu / ReluBackward bench: values and masks bit-exact against golden `layers.ReLU` forward and
backward, and cycles against niti_hw.perf.timing.relu_cycles.

Tensors take every int8 profile (random, mixed, +-127 only, all zeros) and end in partial beats
padded with random values; errors are random int8 through the forward pass's mask. The direction
comes from NITI_HW_RELU (`forward` for the `relu` unit, `backward` for `relu_backward`).
"""

from __future__ import annotations

import cocotb
import numpy as np
from harness import (BENCH_TIMEOUT, Scoreboard, bench_direction, bench_int, bench_params, record,
                     start, stream_through)
from stimulus import relu_backward_stream, relu_forward_stream, relu_tensors

from niti_hw.perf.timing import relu_cycles
from niti_hw.rtl.relu import (relu_back_in_layout, relu_back_out_layout, relu_in_layout,
                              relu_out_layout)

TENSORS_PER_RUN = 200  # tensors streamed back to back between two drain windows


def direction() -> str:
    return bench_direction("NITI_HW_RELU")


def stream(p, rng, tensors):
    """(input layout, output layout, input beats, golden output beats) for this direction."""
    if direction() == "forward":
        return (relu_in_layout(p), relu_out_layout(p), *relu_forward_stream(p, tensors))
    return (relu_back_in_layout(p), relu_back_out_layout(p), *relu_backward_stream(p, rng, tensors))


@cocotb.test(**BENCH_TIMEOUT)
async def random_tensors(dut):
    """Runs of tensors with gaps and backpressure until the budget of values was compared; each
    run ends with a drain window in which no further beat may arrive."""
    p = bench_params()
    await start(dut)
    rng = np.random.default_rng(bench_int("NITI_HW_SEED", 1))
    name = f"relu {direction()} lanes={p.lanes}"
    board = Scoreboard(name, dut._log)
    runs = 0
    while board.values < bench_int("NITI_HW_VECTORS", 2000):
        tensors = relu_tensors(p, rng, TENSORS_PER_RUN)
        in_layout, out_layout, beats, expected = stream(p, rng, tensors)
        _, monitor = await stream_through(dut, in_layout, out_layout, beats, len(expected), 0.3,
                                          0.3, runs, unit=name)
        board.compare_beats(f"run {runs}", monitor.beats, expected)
        runs += 1
    record(board.report())


@cocotb.test(**BENCH_TIMEOUT)
async def cycles(dut):
    """No gaps, no backpressure: each tensor from its first beat accepted to its last beat out
    takes relu_cycles."""
    p = bench_params()
    await start(dut)
    rng = np.random.default_rng(bench_int("NITI_HW_SEED", 1) + 1)
    name = f"relu {direction()} lanes={p.lanes} timing"
    board, timed = Scoreboard(name, dut._log), 0
    for n, tensor in enumerate(relu_tensors(p, rng, 20)):
        in_layout, out_layout, beats, expected = stream(p, rng, [tensor])
        driver, monitor = await stream_through(dut, in_layout, out_layout, beats, len(expected),
                                               0.0, 0.0, n, unit=name)
        board.compare_beats(f"tensor {n}", monitor.beats, expected)
        measured = monitor.received_at[-1] - driver.accepted_at[0] + 1
        model = relu_cycles(tensor.size, p)
        assert measured == model, f"{name}: {tensor.size} values: {measured} cycles, model {model}"
        timed += 1
    record({**board.report(), "timed": timed})
