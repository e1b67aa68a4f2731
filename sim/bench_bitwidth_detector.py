"""BitwidthDetector bench: B(tensor) bit-exact against golden `bitwidth`, plus its latency.

Tensors take every magnitude profile (B = 0..32, int32 extremes, all zeros); most fit one beat
(so many results are checked per cycle), every fourth spans up to four. The unit has no `keep`: a
short final beat is padded with zeros, as its protocol asks, and the padding must not change B.
"""

from __future__ import annotations

import cocotb
import numpy as np

from harness import (BENCH_TIMEOUT, Scoreboard, bench_int, bench_params, record, start,
                     stream_through)
from stimulus import detector_stream

from niti_hw.perf.timing import DETECTOR_LATENCY as LATENCY
from niti_hw.rtl.layouts import BITWIDTH, lanes_layout

async def check(dut, gap, stall, count, seed):
    p = bench_params()
    name = f"bitwidth detector lanes={p.lanes}"
    beats, expected = detector_stream(p, np.random.default_rng(seed), count)
    driver, monitor = await stream_through(dut, lanes_layout(p), BITWIDTH, beats, len(expected),
                                           gap, stall, seed, unit=name)
    board = Scoreboard(name, dut._log)
    board.compare_beats("B of each tensor", monitor.beats, expected)
    return driver, monitor, beats, board.report()


@cocotb.test(**BENCH_TIMEOUT)
async def random_tensors(dut):
    await start(dut)
    _, _, _, checked = await check(dut, 0.3, 0.3, bench_int("NITI_HW_VECTORS", 2000),
                                   bench_int("NITI_HW_SEED", 1))
    record(checked)


@cocotb.test(**BENCH_TIMEOUT)
async def latency(dut):
    """Without gaps or backpressure B appears LATENCY cycles after each tensor's last beat."""
    await start(dut)
    driver, monitor, beats, checked = await check(dut, 0.0, 0.0, 100,
                                                  bench_int("NITI_HW_SEED", 1) + 1)
    lasts = [t for t, beat in zip(driver.accepted_at, beats) if beat["last"]]
    measured = [r - t for r, t in zip(monitor.received_at, lasts)]
    assert measured == [LATENCY] * len(lasts), f"latencies {sorted(set(measured))}, documented {LATENCY}"
    record({**checked, "latency": LATENCY})
