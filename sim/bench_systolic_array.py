"""SystolicArray bench: random GEMMs through the tile protocol, bit-exact against golden int8_matmul.

Phase 1 streams random shapes (K = 1 up to 3 * max(rows, cols), so short tiles exercise the bubble
rule) with random valid gaps and backpressure. Phase 2 streams one long GEMM (K >= 256) with no gaps
or stalls and checks the documented latency of every tile and the MAC utilisation.
"""

from __future__ import annotations

import random

import cocotb
import numpy as np

from harness import Scoreboard, StreamDriver, StreamMonitor, bench_int, bench_params, record, start
from stimulus import int8_matrix

from niti_hw.golden import int8_matmul
from niti_hw.perf.tiling import assemble, operand_beats, tile_grid
from niti_hw.perf.timing import first_row_latency, min_tile_cycles
from niti_hw.rtl.layouts import operand_layout, result_row_layout

KINDS = ("random", "mixed", "extremes", "zeros")


async def run_gemms(dut, p, gemms, gap, stall, seed):
    rng = random.Random(seed)
    driver = StreamDriver(dut, "i", operand_layout(p), rng, gap=gap)
    monitor = StreamMonitor(dut, "o", result_row_layout(p), rng, stall=stall)
    beats, shapes = [], []
    for a, b in gemms:
        beats += operand_beats(a, b, p)
        shapes.append((a.shape[0], b.shape[1], len(tile_grid(a.shape[0], b.shape[1], p))))
    total_rows = sum(tiles for _, _, tiles in shapes) * p.rows
    collect = cocotb.start_soon(monitor.collect(total_rows))
    await driver.send(beats)
    await collect
    return driver, monitor, shapes


def check_results(p, gemms, monitor, shapes, board):
    offset = 0
    for (a, b), (m, n, tiles) in zip(gemms, shapes):
        count = tiles * p.rows
        got_beats = monitor.beats[offset:offset + count]
        offset += count
        lasts = [int(beat.last) for beat in got_beats]
        board.compare("row `last` flags", lasts, ([0] * (p.rows - 1) + [1]) * tiles)
        c = assemble([list(beat.c) for beat in got_beats], m, n, p)
        board.compare(f"C of a {m}x{a.shape[1]}x{n} GEMM", c.tolist(),
                      int8_matmul(a.astype(np.int8), b.astype(np.int8)).astype(np.int64).tolist())


@cocotb.test()
async def random_gemms(dut):
    p = bench_params()
    seed = bench_int("NITI_HW_SEED", 1)
    rng = np.random.default_rng(seed)
    await start(dut)
    board = Scoreboard(f"array {p.name}", dut._log)
    budget = bench_int("NITI_HW_VECTORS", 2000)
    gemms, beats = [], 0
    span = 3 * min_tile_cycles(p)
    while beats < budget:
        m = int(rng.integers(1, 2 * p.rows + 2))
        n = int(rng.integers(1, 2 * p.cols + 2))
        k = int(rng.choice([1, 2, int(rng.integers(1, span + 1))]))
        kind = KINDS[len(gemms) % len(KINDS)]
        gemms.append((int8_matrix(rng, (m, k), kind), int8_matrix(rng, (k, n), kind)))
        beats += k * len(tile_grid(m, n, p))
    driver, monitor, shapes = await run_gemms(dut, p, gemms, 0.3, 0.3, seed)
    check_results(p, gemms, monitor, shapes, board)
    board.report()
    dut._log.info("operand vectors: %d in %d GEMMs", len(driver.accepted_at), len(gemms))
    record({"vectors": len(driver.accepted_at), "gemms": len(gemms)})


@cocotb.test()
async def long_gemm_timing(dut):
    """K >= 256 back to back: every tile's row 0 at the documented latency, MACs >= 95 % busy."""
    p = bench_params()
    rng = np.random.default_rng(bench_int("NITI_HW_SEED", 1) + 1)
    await start(dut)
    board = Scoreboard(f"array {p.name} long GEMM", dut._log)
    m, n, k = 2 * p.rows, 2 * p.cols, bench_int("NITI_HW_LONG_K", 256)
    a, b = int8_matrix(rng, (m, k), "random"), int8_matrix(rng, (k, n), "random")
    driver, monitor, shapes = await run_gemms(dut, p, [(a, b)], 0.0, 0.0, 0)
    check_results(p, [(a, b)], monitor, shapes, board)
    lasts = [t for t, beat in zip(driver.accepted_at, range(len(driver.accepted_at)))
             if (beat + 1) % k == 0]
    row0 = monitor.received_at[::p.rows]
    latencies = [r - t for r, t in zip(row0, lasts)]
    board.compare("row 0 latency of each tile", latencies, [first_row_latency(p)] * len(lasts))
    for t in range(len(lasts)):
        rows_at = monitor.received_at[t * p.rows:(t + 1) * p.rows]
        board.compare("rows of a tile on consecutive cycles", rows_at,
                      list(range(rows_at[0], rows_at[0] + p.rows)))
    cycles = monitor.received_at[-1] - driver.accepted_at[0] + 1
    utilisation = m * n * k / (p.rows * p.cols * cycles)
    dut._log.info("long GEMM %dx%dx%d: %d cycles, MAC utilisation %.4f", m, k, n, cycles, utilisation)
    record({"long_gemm": [m, k, n], "cycles": cycles, "utilisation": utilisation,
             "first_row_latency": latencies[0]})
    assert utilisation >= 0.95, f"MAC utilisation {utilisation:.4f} is below 0.95"
    board.report()
