"""Datapath bench: one tile through array -> B -> k = max(0, B - 7) -> R(acc, k), against golden.

Each tile is a full rows x cols output (the tensor of the top), K random (short tiles included); the
golden chain is int8_matmul then RoundingPolicy.narrow in the top's mode (one persistent policy).
"""

from __future__ import annotations

from itertools import pairwise

import cocotb
import numpy as np

from harness import Scoreboard, bench_int, bench_params, record, start, stream_through
from stimulus import int8_matrix

from niti_hw.golden import RoundingPolicy, int8_matmul
from niti_hw.perf.tiling import operand_beats
from niti_hw.perf.timing import beats_per_tile, first_out_latency, min_tile_cycles, tile_pair_cycles
from niti_hw.rtl.layouts import datapath_out_layout, operand_layout

KINDS = ("random", "mixed", "extremes", "zeros")


async def check(dut, policy, gap, stall, tiles, seed, depth=None):
    """Stream `tiles` tiles (K random, or `depth` for all) and compare every beat with golden."""
    p = bench_params()
    rng = np.random.default_rng(seed)
    problems, beats = [], []
    for n in range(tiles):
        k = depth or int(rng.choice([1, int(rng.integers(1, 40)), int(rng.integers(1, 300))]))
        kind = KINDS[n % len(KINDS)]
        a, b = int8_matrix(rng, (p.rows, k), kind), int8_matrix(rng, (k, p.cols), kind)
        problems.append((a, b))
        beats += operand_beats(a, b, p)
    per_tile = beats_per_tile(p)
    driver, monitor = await stream_through(dut, operand_layout(p), datapath_out_layout(p), beats,
                                           tiles * per_tile, gap, stall, seed)
    board = Scoreboard(f"datapath {p.name} {p.round_mode}", dut._log)
    for n, (a, b) in enumerate(problems):
        out = monitor.beats[n * per_tile:(n + 1) * per_tile]
        acc = int8_matmul(a.astype(np.int8), b.astype(np.int8))
        expected, shift = policy.narrow(acc, "activation")
        board.compare(f"k of tile {n}", [int(beat.k) for beat in out], [shift] * per_tile)
        board.compare(f"values of tile {n}", [v for beat in out for v in list(beat.data)],
                      expected.reshape(-1).astype(int).tolist())
        board.compare(f"last of tile {n}", [int(beat.last) for beat in out],
                      [0] * (per_tile - 1) + [1])
    board.report()
    return driver, monitor, beats


@cocotb.test()
async def random_tiles(dut):
    p = bench_params()
    # The golden forward step: k = max(0, B(acc) - 7), R(acc, k); one policy keeps the LFSRs.
    policy = RoundingPolicy(activation=p.round_mode, seed=p.lfsr_seed, n_lanes=p.lfsr_lanes)
    await start(dut)
    seed = bench_int("NITI_HW_SEED", 1)
    driver, _, _ = await check(dut, policy, 0.3, 0.3, bench_int("NITI_HW_TILES", 20), seed)
    vectors = len(driver.accepted_at)
    # Then without gaps or stalls, from idle: the first tile's first rounded beat comes at the
    # documented latency; later tiles wait for the replay of the one before, never less.
    driver, monitor, beats = await check(dut, policy, 0.0, 0.0, 4, seed + 1)
    lasts = [t for t, beat in zip(driver.accepted_at, beats) if beat["last"]]
    firsts = monitor.received_at[::beats_per_tile(p)]
    measured = [f - t for f, t in zip(firsts, lasts)]
    assert measured[0] == first_out_latency(p) and min(measured) >= first_out_latency(p), \
        f"latencies {measured}, documented {first_out_latency(p)} from idle"
    record({"vectors": vectors + len(driver.accepted_at), "latency": first_out_latency(p)})


@cocotb.test()
async def throughput(dut):
    """Back-to-back tiles of one K, no gaps, no backpressure: spacing of consecutive tiles' last
    rounded beats (after the first two) against tile_pair_cycles, every beat against golden."""
    p = bench_params()
    policy = RoundingPolicy(activation=p.round_mode, seed=p.lfsr_seed, n_lanes=p.lfsr_lanes)
    await start(dut)
    per_tile, tiles = beats_per_tile(p), bench_int("NITI_HW_THROUGHPUT_TILES", 10)
    measured = {}
    for n, depth in enumerate((64, min_tile_cycles(p))):  # array-bound, then replay-bound
        _, monitor, _ = await check(dut, policy, 0.0, 0.0, tiles, 100 + n, depth)
        ends = monitor.received_at[per_tile - 1::per_tile]
        spacing = [b - a for a, b in pairwise(ends[1:])]
        pairs = {a + b for a, b in pairwise(spacing)}
        documented = tile_pair_cycles(p, depth)
        assert pairs == {documented}, \
            f"K={depth}: tile spacing {spacing}, documented {documented} cycles per two tiles"
        measured[str(depth)] = {"spacing": spacing, "cycles_per_tile": sum(spacing[:2]) / 2}
    record({"throughput": measured})
