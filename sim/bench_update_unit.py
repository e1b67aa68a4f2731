"""WeightUpdate bench: W' = sat(W - g) and q = R(W', bits - 8, nearest) bit-exact against the golden
`IntegerWeights.apply` / `as_int8`, and cycles against niti_hw.perf.timing.update_cycles.

Weights cover the whole stored range with its extremes (saturation both ways), gradients the int8
range; tensors of random size end in partial beats.
"""

from __future__ import annotations

import cocotb
import numpy as np
from harness import BENCH_TIMEOUT, Scoreboard, bench_int, bench_params, record, start
from stimulus import random_weights
from tensor_host import UpdateHost

from niti_hw.golden.init import IntegerWeights
from niti_hw.perf.timing import update_cycles


async def check(dut, host, rng, bits, board, budget, min_tensors=1):
    """Random tensors until `budget` weights were compared (each W' and q counts once), and at
    least `min_tensors` of them."""
    timings = []
    while board.values < budget or len(timings) < min_tensors:
        size = int(rng.integers(1, 200))
        w, g = random_weights(rng, size, bits)
        golden = IntegerWeights(w, 0, bits)
        golden.apply(g)
        new_w, q, first, last = await host.update(w, g)
        for n in range(size):
            board.compare(f"W' of weight {n} (W={w[n]}, g={g[n]})", int(new_w[n]),
                          int(golden.values[n]))
        board.compare(f"read-out of {size} weights", q.tolist(),
                      golden.as_int8().values.astype(int).tolist())
        timings.append((size, last - first + 1))
        board.vectors += -(-size // host.p.lanes)
    return timings


@cocotb.test(**BENCH_TIMEOUT)
async def random_updates(dut):
    p = bench_params()
    bits = bench_int("NITI_HW_WEIGHT_BITS", 16)
    await start(dut)
    rng = np.random.default_rng(bench_int("NITI_HW_SEED", 1))
    board = Scoreboard(f"update_unit w{bits} lanes={p.lanes}", dut._log)
    await check(dut, UpdateHost(dut, p, bits, rng, gap=0.3, stall=0.3), rng, bits, board,
                bench_int("NITI_HW_VECTORS", 2000))
    values = board.values
    timings = await check(dut, UpdateHost(dut, p, bits, rng), rng, bits, board, values + 300,
                          min_tensors=3)
    for size, measured in timings:
        assert measured == update_cycles(size, p), \
            f"{size} weights: {measured} cycles, model update_cycles {update_cycles(size, p)}"
    board.report()
    record({"values": board.values, "vectors": board.vectors, "timed": len(timings),
            "weight_bits": bits})
