"""MaxPool / MaxPoolBackward bench: window maxima, winning offsets and routed errors bit-exact
against golden `layers.MaxPool2d` forward and backward, and cycles against
niti_hw.perf.timing.maxpool_cycles.

NHWC tensors with edges the pool leaves out, one or two lane groups of channels; every fourth
tensor holds only -1..1 and every fourth +-127 only, so windows tie (the first largest wins).
NITI_HW_POOL picks the direction (`forward` for `max_pool_k<kernel>`, `backward` for
`max_pool_backward_k<kernel>`), NITI_HW_KERNEL the kernel.
"""

from __future__ import annotations

import cocotb
import numpy as np
from harness import (BENCH_TIMEOUT, Scoreboard, bench_direction, bench_int, bench_params, record,
                     start, stream_through)
from stimulus import pool_backward_stream, pool_forward_stream, pool_tensors

from niti_hw.perf.timing import maxpool_cycles
from niti_hw.rtl.max_pool import (pool_back_in_layout, pool_back_out_layout, pool_in_layout,
                                  pool_out_layout)

TENSORS_PER_RUN = 20  # tensors streamed back to back between two drain windows


def direction() -> str:
    return bench_direction("NITI_HW_POOL")


def stream(p, kernel, rng, tensors):
    """(input layout, output layout, input beats, golden output beats) for this direction."""
    if direction() == "forward":
        return (pool_in_layout(p), pool_out_layout(p, kernel),
                *pool_forward_stream(p, kernel, tensors))
    return (pool_back_in_layout(p, kernel), pool_back_out_layout(p),
            *pool_backward_stream(p, kernel, rng, tensors))


@cocotb.test(**BENCH_TIMEOUT)
async def random_tensors(dut):
    """Runs of tensors with gaps and backpressure until the budget of values was compared; each
    run ends with a drain window in which no further beat may arrive."""
    p, kernel = bench_params(), bench_int("NITI_HW_KERNEL", 2)
    await start(dut)
    rng = np.random.default_rng(bench_int("NITI_HW_SEED", 1))
    name = f"max_pool {direction()} k={kernel} lanes={p.lanes}"
    board = Scoreboard(name, dut._log)
    runs = 0
    while board.values < bench_int("NITI_HW_VECTORS", 2000):
        tensors = pool_tensors(p, rng, TENSORS_PER_RUN, kernel)
        in_layout, out_layout, beats, expected = stream(p, kernel, rng, tensors)
        _, monitor = await stream_through(dut, in_layout, out_layout, beats, len(expected), 0.3,
                                          0.3, runs, unit=name)
        board.compare_beats(f"run {runs}", monitor.beats, expected)
        runs += 1
    record(board.report())


@cocotb.test(**BENCH_TIMEOUT)
async def cycles(dut):
    """No gaps, no backpressure: each tensor from its first beat accepted to its last beat out
    takes maxpool_cycles."""
    p, kernel = bench_params(), bench_int("NITI_HW_KERNEL", 2)
    await start(dut)
    rng = np.random.default_rng(bench_int("NITI_HW_SEED", 1) + 1)
    name = f"max_pool {direction()} k={kernel} lanes={p.lanes} timing"
    board, timed = Scoreboard(name, dut._log), 0
    for n, tensor in enumerate(pool_tensors(p, rng, 8, kernel)):
        in_layout, out_layout, beats, expected = stream(p, kernel, rng, [tensor])
        driver, monitor = await stream_through(dut, in_layout, out_layout, beats, len(expected),
                                               0.0, 0.0, n, unit=name)
        board.compare_beats(f"tensor {n}", monitor.beats, expected)
        windows = len(expected) if direction() == "forward" else len(beats)
        measured = monitor.received_at[-1] - driver.accepted_at[0] + 1
        model = maxpool_cycles(windows, kernel)
        assert measured == model, f"{name}: {windows} windows: {measured} cycles, model {model}"
        timed += 1
    record({**board.report(), "timed": timed})
