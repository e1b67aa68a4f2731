"""Stream testbench for `amaranth.sim`: the fast tier's driver, monitor and drain, in-process.

The same contract as the cocotb harness, without an HDL simulator: `run_stream` drives input beats
into a component's `i`, collects `count` beats from `o`, then watches a drain window; a stream that
stalls for `patience` cycles or an extra beat fails with the unit's name and the count seen.
Optional random valid gaps and backpressure make the stall paths run too.
"""

from __future__ import annotations

import random

from amaranth.sim import Simulator

from harness import DRAIN, PATIENCE, to_python


def run_stream(dut, beats: list, count: int, unit: str, gap: float = 0.0, stall: float = 0.0,
               seed: int = 0, drain: int = DRAIN, patience: int = PATIENCE) -> list:
    """Output beats of `dut` (as Python values) for input `beats`; raises AssertionError on a
    stuck stream or an extra beat.

    A beat is a payload for `i`, or a `(port, payload)` pair for another input stream (a config
    beat on `cfg`, say); beats are sent one after another in the order given.
    """
    rng = random.Random(seed)
    got: list = []
    failures: list[str] = []

    async def producer(ctx):
        waited = 0
        for index, beat in enumerate(beats):
            port = getattr(dut, beat[0]) if isinstance(beat, tuple) else dut.i
            payload = beat[1] if isinstance(beat, tuple) else beat
            while rng.random() < gap:
                await ctx.tick()
            ctx.set(port.payload, payload)
            ctx.set(port.valid, 1)
            while True:
                _, _, ready = await ctx.tick().sample(port.ready)
                if ready:
                    waited = 0
                    break
                waited += 1
                if waited >= patience:
                    failures.append(f"{unit}: input not ready for {patience} cycles; "
                                    f"{index} of {len(beats)} beats accepted")
                    return
            ctx.set(port.valid, 0)

    async def consumer(ctx):
        idle = 0
        while len(got) < count + 1 and idle < (patience if len(got) < count else drain):
            ready = len(got) >= count or rng.random() >= stall
            ctx.set(dut.o.ready, ready)
            _, _, valid, payload = await ctx.tick().sample(dut.o.valid, dut.o.payload)
            if valid and ready:
                got.append(to_python(payload))
                idle = 0
            else:
                idle += 1
        if len(got) < count:
            failures.append(f"{unit}: timed out on output `o`: saw {len(got)} of {count} expected "
                            f"beats, none in the last {patience} cycles")
        elif len(got) > count:
            failures.append(f"{unit}: extra beat on output `o` after the expected {count}: "
                            f"{got[-1]!r}")

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(producer, background=True)
    sim.add_testbench(consumer)
    sim.run()
    if failures:
        raise AssertionError(failures[0])
    return got
