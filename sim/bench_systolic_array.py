"""SystolicArray bench: random GEMMs through the tile protocol, bit-exact against golden int8_matmul.

Phase 1 streams random shapes (K = 1 up to 3 * max(rows, cols), so short tiles exercise the bubble
rule) with random valid gaps and backpressure. Phase 2 streams one long GEMM (K >= 256) with no gaps
or stalls and checks the documented latency of every tile and the MAC utilisation. Every result row
is compared whole, the zero padding of edge tiles included.
"""

from __future__ import annotations

import cocotb
import numpy as np

from harness import (BENCH_TIMEOUT, Scoreboard, bench_int, bench_params, record, start,
                     stream_through)
from stimulus import array_rows, int8_matrix

from niti_hw.perf.tiling import operand_beats, tile_grid
from niti_hw.perf.timing import first_row_latency, min_tile_cycles
from niti_hw.rtl.layouts import operand_layout, result_row_layout

KINDS = ("random", "mixed", "extremes", "zeros")


async def run_gemms(dut, p, gemms, gap, stall, seed, board):
    """Stream the GEMMs back to back and compare every result row with golden."""
    beats = [beat for a, b in gemms for beat in operand_beats(a, b, p)]
    expected = [row for a, b in gemms for row in array_rows(a, b, p)]
    driver, monitor = await stream_through(dut, operand_layout(p), result_row_layout(p), beats,
                                           len(expected), gap, stall, seed, unit=board.name,
                                           drain=4 * min_tile_cycles(p) + 20)
    board.compare_beats(f"result rows of {len(gemms)} GEMMs", monitor.beats, expected)
    return driver, monitor


@cocotb.test(**BENCH_TIMEOUT)
async def random_gemms(dut):
    """Random GEMMs until NITI_HW_VECTORS result rows, with gaps and backpressure."""
    p = bench_params()
    seed = bench_int("NITI_HW_SEED", 1)
    rng = np.random.default_rng(seed)
    await start(dut)
    board = Scoreboard(f"systolic array {p.name}", dut._log)
    budget = bench_int("NITI_HW_VECTORS", 2000)
    gemms, rows = [], 0
    span = 3 * min_tile_cycles(p)
    while rows < budget:
        m = int(rng.integers(1, 2 * p.rows + 2))
        n = int(rng.integers(1, 2 * p.cols + 2))
        k = int(rng.choice([1, 2, int(rng.integers(1, span + 1))]))
        kind = KINDS[len(gemms) % len(KINDS)]
        gemms.append((int8_matrix(rng, (m, k), kind), int8_matrix(rng, (k, n), kind)))
        rows += len(tile_grid(m, n, p)) * p.rows
    driver, _ = await run_gemms(dut, p, gemms, 0.3, 0.3, seed, board)
    checked = board.report()
    record({**checked, "operand_beats": len(driver.accepted_at), "gemms": len(gemms)})


@cocotb.test(**BENCH_TIMEOUT)
async def long_gemm_timing(dut):
    """K >= 256 back to back: every tile's row 0 at the documented latency, MACs >= 95 % busy."""
    p = bench_params()
    rng = np.random.default_rng(bench_int("NITI_HW_SEED", 1) + 1)
    await start(dut)
    board = Scoreboard(f"systolic array {p.name} long GEMM", dut._log)
    m, n, k = 2 * p.rows, 2 * p.cols, bench_int("NITI_HW_LONG_K", 256)
    a, b = int8_matrix(rng, (m, k), "random"), int8_matrix(rng, (k, n), "random")
    driver, monitor = await run_gemms(dut, p, [(a, b)], 0.0, 0.0, 0, board)
    lasts = driver.accepted_at[k - 1::k]
    row0 = monitor.received_at[::p.rows]
    latencies = [r - t for r, t in zip(row0, lasts)]
    assert latencies == [first_row_latency(p)] * len(lasts), \
        f"row 0 latency of each tile {latencies}, documented {first_row_latency(p)}"
    for t in range(len(lasts)):
        rows_at = monitor.received_at[t * p.rows:(t + 1) * p.rows]
        assert rows_at == list(range(rows_at[0], rows_at[0] + p.rows)), \
            f"rows of tile {t} drained at cycles {rows_at}, not on consecutive cycles"
    cycles = monitor.received_at[-1] - driver.accepted_at[0] + 1
    utilisation = m * n * k / (p.rows * p.cols * cycles)
    dut._log.info("long GEMM %dx%dx%d: %d cycles, MAC utilisation %.4f", m, k, n, cycles, utilisation)
    checked = board.report()
    record({**checked, "long_gemm": [m, k, n], "cycles": cycles, "utilisation": utilisation,
            "first_row_latency": latencies[0]})
    assert utilisation >= 0.95, f"MAC utilisation {utilisation:.4f} is below 0.95"
