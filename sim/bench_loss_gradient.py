"""LossGradient bench: the errors bit-exact against golden `ce_gradient` (the unit's rounding mode,
stochastic lanes carried from tensor to tensor), refusals, and cycles against
niti_hw.perf.timing.loss_cycles / loss_row_cycles.

Tensors take s on and around every boundary of the unit (`LOSS_EXPONENTS`), then random s, with
random, mixed, +-127, all-equal and zero logits, 1 class, the most and random counts; the logits
beyond `classes` in a row beat are random int8 including -128. NITI_HW_CLASSES gives the most
classes the unit was built for (`loss_gradient_c<classes>`; default 10).
"""

from __future__ import annotations

import random

import cocotb
import numpy as np
from harness import (BENCH_TIMEOUT, DRAIN, Scoreboard, StreamDriver, StreamMonitor, bench_int,
                     bench_params, record, start)
from stimulus import loss_refused_tensors, loss_stream, loss_tensors

from niti_hw.golden import LfsrLanes
from niti_hw.perf.timing import loss_cycles, loss_row_cycles
from niti_hw.rtl.loss_gradient import (DEFAULT_MAX_CLASSES, loss_cfg_layout, loss_out_layout,
                                       loss_row_layout)

TENSORS_PER_RUN = 12  # tensors streamed back to back between two drain windows


def most_classes() -> int:
    return bench_int("NITI_HW_CLASSES", DEFAULT_MAX_CLASSES)


async def stream_tensors(dut, p, beats, count, gap, stall, seed, unit):
    """Send cfg and row beats in order (cfg on `cfg`, rows on `i`) while collecting `count`
    beats from `o`, then watch a drain window for an extra one. Returns the cfg driver, the row
    driver and the monitor (their cycles of every transfer)."""
    rng, most = random.Random(seed), most_classes()
    cfg = StreamDriver(dut, "cfg", loss_cfg_layout(most), rng, gap=gap, unit=unit)
    rows = StreamDriver(dut, "i", loss_row_layout(most), rng, gap=gap, unit=unit)
    monitor = StreamMonitor(dut, "o", loss_out_layout(p), rng, stall=stall, unit=unit)
    collect = cocotb.start_soon(monitor.collect(count))
    try:
        pending = []
        for beat in beats + [None]:
            if pending and (beat is None or isinstance(beat, tuple)):
                await rows.send(pending)
                pending = []
            if isinstance(beat, tuple):
                await cfg.send([beat[1]])
            elif beat is not None:
                pending.append(beat)
    except AssertionError:
        collect.cancel()
        raise
    await collect
    await monitor.drain(DRAIN)
    return cfg, rows, monitor


async def begin(dut):
    dut.cfg__valid.value = 0
    await start(dut)
    p = bench_params()
    return p, LfsrLanes(p.lfsr_seed, p.lfsr_lanes), f"loss_gradient {p.round_mode} " \
        f"classes<={most_classes()} lanes={p.lanes}"


@cocotb.test(**BENCH_TIMEOUT)
async def random_tensors(dut):
    """Runs of tensors with gaps and backpressure until the budget of values was compared; each
    run ends with a drain window in which no further beat may arrive."""
    p, lanes, name = await begin(dut)
    rng = np.random.default_rng(bench_int("NITI_HW_SEED", 1))
    board = Scoreboard(name, dut._log)
    runs = 0
    while board.values < bench_int("NITI_HW_VECTORS", 2000):
        # every boundary of s in the first run, random s after it
        tensors = loss_tensors(rng, 4 * TENSORS_PER_RUN if runs == 0 else TENSORS_PER_RUN,
                               most_classes(), boundaries=runs == 0)
        beats, expected = loss_stream(p, most_classes(), rng, tensors, p.round_mode, lanes)
        _, _, monitor = await stream_tensors(dut, p, beats, len(expected), 0.3, 0.3, runs, name)
        board.compare_beats(f"run {runs}", monitor.beats, expected)
        runs += 1
    assert not int(dut.bad_input.value), f"{name}: bad_input set by valid tensors"
    record(board.report())


@cocotb.test(**BENCH_TIMEOUT)
async def refusals(dut):
    """Rows with a label >= classes or a logit of -128 come out zero between golden rows; a
    tensor with classes outside 1..most gives zeros (none for 0); `bad_input` rises and stays."""
    p, lanes, name = await begin(dut)
    rng = np.random.default_rng(bench_int("NITI_HW_SEED", 1) + 3)
    board = Scoreboard(f"{name} refusals", dut._log)
    good = loss_tensors(rng, 3, most_classes())
    beats, expected = loss_stream(p, most_classes(), rng, good, p.round_mode, lanes)
    _, _, monitor = await stream_tensors(dut, p, beats, len(expected), 0.3, 0.3, 1, name)
    board.compare_beats("valid tensors", monitor.beats, expected)
    assert not int(dut.bad_input.value), f"{name}: bad_input set by valid tensors"
    refused = loss_refused_tensors(rng, most_classes())
    beats, expected = loss_stream(p, most_classes(), rng, refused + good, p.round_mode, lanes)
    _, _, monitor = await stream_tensors(dut, p, beats, len(expected), 0.3, 0.3, 2, name)
    board.compare_beats("refused and valid tensors", monitor.beats, expected)
    assert int(dut.bad_input.value), f"{name}: bad_input not set after refused input"
    record({**board.report(), "refused": len(refused)})


@cocotb.test(**BENCH_TIMEOUT)
async def cycles(dut):
    """No gaps, no backpressure: rows taken every loss_row_cycles(classes) cycles, each tensor
    from its cfg beat to its last output beat in loss_cycles(samples, classes)."""
    p, lanes, name = await begin(dut)
    rng = np.random.default_rng(bench_int("NITI_HW_SEED", 1) + 1)
    board, timed = Scoreboard(f"{name} timing", dut._log), 0
    for n, tensor in enumerate(loss_tensors(rng, 8, most_classes(), boundaries=False)):
        samples, classes = len(tensor["y"]), tensor["classes"]
        beats, expected = loss_stream(p, most_classes(), rng, [tensor], p.round_mode, lanes)
        cfg, rows, monitor = await stream_tensors(dut, p, beats, len(expected), 0.0, 0.0, n, name)
        board.compare_beats(f"tensor {n}", monitor.beats, expected)
        what = f"{name}: {samples} x {classes}"
        gaps = np.diff([cfg.accepted_at[0]] + rows.accepted_at).tolist()
        assert gaps == [1] + [loss_row_cycles(classes)] * (samples - 1), \
            f"{what}: rows taken {gaps} cycles apart, model 1 then {loss_row_cycles(classes)}"
        measured = monitor.received_at[-1] - cfg.accepted_at[0] + 1
        model = loss_cycles(samples, classes)
        assert measured == model, f"{what}: {measured} cycles, model {model}"
        timed += 1
    record({**board.report(), "timed": timed})
