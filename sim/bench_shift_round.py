"""ShiftRound bench (one mode per build): R(x, k, mode) bit-exact against golden `shift_round`.

Every shift 0..32 appears with every magnitude profile, int32 extremes and zeros; tensors may end in a
partial beat (`keep` prefix). Stochastic mode shares one golden LfsrLanes across all tensors, as the
unit's LFSRs persist. The latency test streams without gaps or backpressure.
"""

from __future__ import annotations

import os

import cocotb
import numpy as np

from harness import Scoreboard, bench_int, bench_params, record, start, stream_through
from stimulus import int32_tensor

from niti_hw.golden import MAX_SHIFT, LfsrLanes, shift_round
from niti_hw.rtl.layouts import round_in_layout, round_out_layout
from niti_hw.rtl.shift_round import LATENCY

KINDS = [str(bits) for bits in range(MAX_SHIFT + 1)] + ["zeros", "extremes", "random"]


def make_tensors(p, rng, beat_budget):
    tensors, beats = [], []
    while len(beats) < beat_budget:
        n = len(tensors)
        k = n % (MAX_SHIFT + 1)
        kind = KINDS[(n // (MAX_SHIFT + 1) + n) % len(KINDS)]
        size = int(rng.integers(1, 4 * p.lanes + 1))
        values = int32_tensor(rng, size, kind)
        padded = np.zeros(-(-size // p.lanes) * p.lanes, dtype=np.int64)
        padded[:size] = values
        chunks = padded.reshape(-1, p.lanes)
        for c, chunk in enumerate(chunks):
            keep = min(p.lanes, size - c * p.lanes)
            beats.append({"data": chunk.tolist(), "k": k, "keep": (1 << keep) - 1,
                          "last": int(c == len(chunks) - 1)})
        tensors.append((values, k))
    return tensors, beats


async def check(dut, mode, lanes, gap, stall, budget, seed):
    p = bench_params()
    rng = np.random.default_rng(seed)
    tensors, beats = make_tensors(p, rng, budget)
    driver, monitor = await stream_through(dut, round_in_layout(p), round_out_layout(p), beats,
                                           len(beats), gap, stall, seed)
    board = Scoreboard(f"shift_round {mode} lanes={p.lanes}", dut._log)
    got_all = [v for beat in monitor.beats for v in list(beat.data)]
    keeps = [v for beat in monitor.beats for v in range(p.lanes) if (int(beat.keep) >> v) & 1]
    offset = 0
    flat = []
    for values, k in tensors:
        width = -(-len(values) // p.lanes) * p.lanes
        got = got_all[offset:offset + len(values)]
        offset += width
        expected = shift_round(values, k, mode, lanes=lanes if mode == "stochastic" else None)
        board.compare(f"R(x, k={k}) of {len(values)} values", got, expected.astype(int).tolist())
        flat.append(len(values))
    board.compare("lanes flagged `keep`", len(keeps), sum(flat))
    board.compare("k passed along", [int(beat.k) for beat in monitor.beats], [b["k"] for b in beats])
    board.report()
    return driver, monitor


@cocotb.test()
async def random_tensors(dut):
    p = bench_params()
    mode = os.environ["NITI_HW_MODE"]
    lanes = LfsrLanes(p.lfsr_seed, p.lfsr_lanes)
    await start(dut)
    driver, monitor = await check(dut, mode, lanes, 0.3, 0.3, bench_int("NITI_HW_VECTORS", 2000),
                                  bench_int("NITI_HW_SEED", 1))
    # The latency test runs on with the same LFSR states (the unit is not reset in between).
    driver, monitor = await check(dut, mode, lanes, 0.0, 0.0, 100, bench_int("NITI_HW_SEED", 1) + 1)
    measured = [r - t for r, t in zip(monitor.received_at, driver.accepted_at)]
    assert measured == [LATENCY] * len(measured), f"latencies {sorted(set(measured))}, documented {LATENCY}"
    record({"vectors": bench_int("NITI_HW_VECTORS", 2000) + len(driver.accepted_at),
            "latency": LATENCY, "mode": mode})
