"""Measure each unit's cycles on the RTL in `amaranth.sim` (in-process, no HDL simulator): the
known answers of tests/test_perf_known_cycles.py come from this script's output.

No input gaps, no backpressure, from reset; a count runs from the first beat accepted (the first
operand beat on the tensor datapath) to the last output beat taken, inclusive, as the cocotb
benches count it. Usage (from the repository root, with the rtl extra):
    python sim/measure_cycles.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from amaranth.sim import Simulator

sys.path.insert(0, str(Path(__file__).resolve().parent))
from niti_hw.params import HardwareParams  # noqa: E402
from niti_hw.perf.tiling import operand_beats  # noqa: E402
from niti_hw.rtl.bitwidth_detector import BitwidthDetector  # noqa: E402
from niti_hw.rtl.datapath import Datapath  # noqa: E402
from niti_hw.rtl.loss_gradient import LossGradient  # noqa: E402
from niti_hw.rtl.max_pool import MaxPool, MaxPoolBackward  # noqa: E402
from niti_hw.rtl.relu import Relu, ReluBackward  # noqa: E402
from niti_hw.rtl.shift_round import ShiftRound  # noqa: E402
from niti_hw.rtl.update_unit import WeightUpdate  # noqa: E402

ROUND = [(2, 5, "nearest"), (2, 5, "pseudo"), (2, 5, "stochastic"), (4, 1, "nearest"),
         (4, 12, "stochastic")]  # lanes, beats, mode
DETECT = [(4, 1), (4, 18), (2, 7)]  # lanes, beats
UPDATE = [(4, 4, 16), (4, 37, 16), (2, 9, 8), (8, 100, 24)]  # lanes, weights, weight bits
TENSOR = [(2, 4, 2, 5, 7, 3), (2, 4, 2, 2, 4, 12), (4, 4, 4, 8, 8, 16), (8, 8, 8, 8, 8, 8),
          (8, 8, 8, 20, 12, 30), (2, 4, 2, 1, 1, 1)]  # rows, cols, lanes, M, N, K
RELU = [(4, 4), (4, 37), (2, 9)]  # lanes, values; forward and backward
POOL = [(4, 2, 1), (4, 2, 5), (2, 3, 3), (2, 1, 4)]  # lanes, kernel, windows; forward and backward
LOSS = [(4, 1, 1), (4, 1, 10), (4, 3, 4), (2, 5, 7), (8, 2, 10)]  # lanes, samples, classes (of 10)


def params(rows: int, cols: int, lanes: int) -> HardwareParams:
    return HardwareParams(rows=rows, cols=cols, lanes=lanes,
                          lfsr_lanes=16 if 16 % lanes == 0 else lanes, tensor_buffer_words=256)


def edges(dut, beats: list, count: int) -> tuple[list[int], list[int]]:
    """Clock edges at which each input beat was accepted and each output beat taken (a beat is a
    payload for `i`, or a (port, payload) pair)."""
    accepted, taken = [], []

    async def bench(ctx):
        ctx.set(dut.o.ready, 1)
        cycle = 0
        while len(taken) < count:
            assert cycle < 10_000, f"{type(dut).__name__}: {len(taken)} of {count} beats"
            ready = 0
            if len(accepted) < len(beats):
                beat = beats[len(accepted)]
                port = getattr(dut, beat[0]) if isinstance(beat, tuple) else dut.i
                ctx.set(port.payload, beat[1] if isinstance(beat, tuple) else beat)
                ctx.set(port.valid, 1)
                _, _, ready, valid = await ctx.tick().sample(port.ready, dut.o.valid)
                if ready:
                    accepted.append(cycle)
                    ctx.set(port.valid, 0)
            else:
                _, _, valid = await ctx.tick().sample(dut.o.valid)
            if valid:
                taken.append(cycle)
            cycle += 1

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return accepted, taken


def main() -> None:
    rng = np.random.default_rng(0)
    for lanes, count, mode in ROUND:
        beats = [{"data": rng.integers(-2**20, 2**20, lanes).tolist(), "k": 3,
                  "keep": (1 << lanes) - 1, "last": int(b == count - 1)} for b in range(count)]
        accepted, taken = edges(ShiftRound(params(2, 4, lanes), mode), beats, count)
        print(f"round    lanes {lanes} values {count * lanes:3} {mode:10} "
              f"cycles {taken[-1] - accepted[0] + 1}")
    for lanes, count in DETECT:
        beats = [{"data": rng.integers(-2**20, 2**20, lanes).tolist(), "last": int(b == count - 1)}
                 for b in range(count)]
        accepted, taken = edges(BitwidthDetector(params(4, 4, lanes)), beats, 1)
        print(f"detector lanes {lanes} values {count * lanes:3} cycles {taken[-1] - accepted[0] + 1}")
    for lanes, weights, bits in UPDATE:
        count = -(-weights // lanes)
        beats = [{"w": rng.integers(-100, 100, lanes).tolist(),
                  "g": rng.integers(-100, 100, lanes).tolist(), "last": int(b == count - 1)}
                 for b in range(count)]
        accepted, taken = edges(WeightUpdate(params(8, 8, lanes), bits), beats, count)
        print(f"update   lanes {lanes} weights {weights:3} bits {bits} "
              f"cycles {taken[-1] - accepted[0] + 1}")
    for rows, cols, lanes, m, n, k in TENSOR:
        p = params(rows, cols, lanes)
        a, b = rng.integers(-127, 128, (m, k)), rng.integers(-127, 128, (k, n))
        beats = [("cfg", {"m": m, "n": n, "rule": 0, "m_u": 3})] + operand_beats(a, b, p)
        accepted, taken = edges(Datapath(p), beats, -(-m * n // lanes))
        print(f"tensor   {p.name} lanes {lanes} {m}x{n}x{k}: cfg to first operand "
              f"{accepted[1] - accepted[0]}, first operand to last beat "
              f"{taken[-1] - accepted[1] + 1}")
    for lanes, values in RELU:
        count = -(-values // lanes)
        for unit, field in ((Relu, "data"), (ReluBackward, "e")):
            beats = [{field: rng.integers(-127, 128, lanes).tolist(), "last": int(b == count - 1)}
                     for b in range(count)]
            accepted, taken = edges(unit(params(4, 4, lanes)), beats, count)
            print(f"relu     lanes {lanes} values {values:3} {unit.__name__:12} "
                  f"cycles {taken[-1] - accepted[0] + 1}")
    for lanes, kernel, windows in POOL:
        size = kernel * kernel
        beats = [{"data": rng.integers(-127, 128, lanes).tolist(),
                  "last": int(b == windows * size - 1)} for b in range(windows * size)]
        accepted, taken = edges(MaxPool(params(4, 4, lanes), kernel), beats, windows)
        forward = taken[-1] - accepted[0] + 1
        beats = [{"e": rng.integers(-127, 128, lanes).tolist(),
                  "index": rng.integers(0, size, lanes).tolist(), "last": int(w == windows - 1)}
                 for w in range(windows)]
        accepted, taken = edges(MaxPoolBackward(params(4, 4, lanes), kernel), beats, windows * size)
        print(f"pool     lanes {lanes} kernel {kernel} windows {windows} cycles forward {forward} "
              f"backward {taken[-1] - accepted[0] + 1}")
    for lanes, samples, classes in LOSS:
        beats = [("cfg", {"s": -3, "classes": classes})]
        beats += [{"a": rng.integers(-127, 128, 10).tolist(), "y": 0, "last": int(r == samples - 1)}
                  for r in range(samples)]
        accepted, taken = edges(LossGradient(params(8, 8, lanes)), beats,
                                -(-samples * classes // lanes))
        print(f"loss     lanes {lanes} {samples} x {classes}: cycles {taken[-1] - accepted[0] + 1}, "
              f"row to row {accepted[2] - accepted[1] if samples > 1 else '-'}")


if __name__ == "__main__":
    main()
