"""ShiftRound bench (one mode per build): R(x, k, mode) bit-exact against golden `shift_round`.

Every shift 0..32 appears with every magnitude profile, int32 extremes and zeros. Tensors may end in
a partial beat: `keep` is a prefix and the lanes outside it hold random garbage, which must neither
reach a kept lane nor step an LFSR. Some tensors have a shift above 32, which the golden model
refuses and so must the unit (zero data, `keep` = 0, no LFSR step, `bad_shift` raised). Stochastic
mode shares one golden LfsrLanes across all tensors, as the unit's LFSRs persist. The latency test
streams without gaps or backpressure.
"""

from __future__ import annotations

import os

import cocotb
import numpy as np

from harness import (BENCH_TIMEOUT, Scoreboard, bench_int, bench_params, record, start,
                     stream_through)
from stimulus import rounding_expected, rounding_tensors

from niti_hw.golden import MAX_SHIFT, LfsrLanes
from niti_hw.rtl.layouts import round_in_layout, round_out_layout
from niti_hw.rtl.shift_round import LATENCY


async def check(dut, mode, lanes, gap, stall, budget, seed):
    p = bench_params()
    name = f"shift_round {mode} lanes={p.lanes}"
    tensors, beats = rounding_tensors(p, np.random.default_rng(seed), budget)
    driver, monitor = await stream_through(dut, round_in_layout(p), round_out_layout(p), beats,
                                           len(beats), gap, stall, seed, unit=name)
    board = Scoreboard(name, dut._log)
    board.compare_beats("R(x, k) of each tensor", monitor.beats,
                        rounding_expected(p, mode, lanes, tensors))
    refused = sum(beat["k"] > MAX_SHIFT for beat in beats)
    return driver, monitor, board.report(), refused


@cocotb.test(**BENCH_TIMEOUT)
async def random_tensors(dut):
    p = bench_params()
    mode = os.environ["NITI_HW_MODE"]
    lanes = LfsrLanes(p.lfsr_seed, p.lfsr_lanes)
    await start(dut)
    assert int(dut.bad_shift.value) == 0, "shift_round: bad_shift is set straight after reset"
    seed = bench_int("NITI_HW_SEED", 1)
    _, _, checked, refused = await check(dut, mode, lanes, 0.3, 0.3,
                                         bench_int("NITI_HW_VECTORS", 2000), seed)
    assert refused and int(dut.bad_shift.value) == 1, \
        f"shift_round {mode}: {refused} beats with k > {MAX_SHIFT} sent, bad_shift not raised"
    # The latency test runs on with the same LFSR states (the unit is not reset in between).
    driver, monitor, timed, _ = await check(dut, mode, lanes, 0.0, 0.0, 100, seed + 1)
    measured = [r - t for r, t in zip(monitor.received_at, driver.accepted_at)]
    assert measured == [LATENCY] * len(measured), f"latencies {sorted(set(measured))}, documented {LATENCY}"
    record({"vectors": checked["vectors"] + timed["vectors"],
            "values": checked["values"] + timed["values"], "refused": refused,
            "latency": LATENCY, "mode": mode})
