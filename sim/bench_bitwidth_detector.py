"""BitwidthDetector bench: B(tensor) bit-exact against golden `bitwidth`, plus its latency.

Tensors of 1..4 beats take every magnitude profile (B = 0..32, int32 extremes, all zeros); a short
final beat is padded with zeros, as the unit's protocol asks.
"""

from __future__ import annotations

import cocotb
import numpy as np

from harness import Scoreboard, bench_int, bench_params, record, start, stream_through
from stimulus import int32_tensor

from niti_hw.golden import MAX_SHIFT, bitwidth
from niti_hw.rtl.bitwidth_detector import LATENCY
from niti_hw.rtl.layouts import BITWIDTH, lanes_layout

KINDS = [str(bits) for bits in range(MAX_SHIFT + 1)] + ["zeros", "extremes", "random"]


def make_tensors(p, rng, beat_budget):
    tensors, beats = [], []
    while len(beats) < beat_budget:
        kind = KINDS[len(tensors) % len(KINDS)]
        size = int(rng.integers(1, 4 * p.lanes + 1))
        values = int32_tensor(rng, size, kind)
        padded = np.zeros(-(-size // p.lanes) * p.lanes, dtype=np.int64)
        padded[:size] = values
        chunks = padded.reshape(-1, p.lanes)
        for n, chunk in enumerate(chunks):
            beats.append({"data": chunk.tolist(), "last": int(n == len(chunks) - 1)})
        tensors.append(values)
    return tensors, beats


async def check(dut, gap, stall, budget, seed):
    p = bench_params()
    rng = np.random.default_rng(seed)
    tensors, beats = make_tensors(p, rng, budget)
    driver, monitor = await stream_through(dut, lanes_layout(p), BITWIDTH, beats, len(tensors),
                                           gap, stall, seed)
    board = Scoreboard(f"bitwidth detector lanes={p.lanes}", dut._log)
    for n, (values, got) in enumerate(zip(tensors, monitor.beats)):
        board.compare(f"B of tensor {n} (max |v| = {int(np.abs(values).max())})", int(got),
                      bitwidth(values))
    board.report()
    return driver, monitor, beats


@cocotb.test()
async def random_tensors(dut):
    await start(dut)
    driver, _, _ = await check(dut, 0.3, 0.3, bench_int("NITI_HW_VECTORS", 2000),
                               bench_int("NITI_HW_SEED", 1))
    record({"vectors": len(driver.accepted_at)})


@cocotb.test()
async def latency(dut):
    """Without gaps or backpressure B appears LATENCY cycles after each tensor's last beat."""
    await start(dut)
    driver, monitor, beats = await check(dut, 0.0, 0.0, 200, bench_int("NITI_HW_SEED", 1) + 1)
    lasts = [t for t, beat in zip(driver.accepted_at, beats) if beat["last"]]
    measured = [r - t for r, t in zip(monitor.received_at, lasts)]
    assert measured == [LATENCY] * len(lasts), f"latencies {sorted(set(measured))}, documented {LATENCY}"
    record({"vectors": len(driver.accepted_at), "latency": LATENCY})
