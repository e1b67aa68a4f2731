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


class AxiLiteInProcess:
    """An AXI4-Lite master for `amaranth.sim` testbenches on `s_axil_*` ports (the fast tier's
    counterpart of cocotbext-axi's AxiLiteMaster), with the address and data channels in a chosen
    order and backpressure on the responses.

    Every wait is bounded by `patience` cycles; `latency` holds the cycles from the last request
    handshake to the response's valid of the latest access; `held` counts the cycles a response
    was offered and not yet taken (its valid and payload must hold meanwhile, or it fails).
    """

    ORDERS = ("together", "aw_first", "w_first")

    def __init__(self, ctx, dut, unit: str, patience: int = 100):
        self.ctx, self.dut, self.unit, self.patience = ctx, dut, unit, patience
        self.latency = self.held = 0

    def port(self, name: str):
        return getattr(self.dut, f"s_axil_{name}")

    async def _requests(self, channels) -> None:
        """Offer every (name, {port: value}) channel at once; each valid drops after its
        handshake."""
        ctx, pending = self.ctx, dict(channels)
        for name, values in pending.items():
            for port, value in values.items():
                ctx.set(self.port(port), value)
            ctx.set(self.port(f"{name}valid"), 1)
        for _ in range(self.patience):
            names = list(pending)
            _, _, *ready = await ctx.tick().sample(*(self.port(f"{n}ready") for n in names))
            for name, took in zip(names, ready):
                if took:
                    ctx.set(self.port(f"{name}valid"), 0)
                    del pending[name]
            if not pending:
                return
        raise AssertionError(f"{self.unit}: channel(s) {', '.join(pending)} not ready for "
                             f"{self.patience} cycles")

    async def _response(self, name: str, payload: tuple, stall: int):
        """Wait for `<name>valid`, hold ready low for `stall` cycles (checking the response holds),
        then take it; returns the payload values."""
        ctx, valid, ready = self.ctx, self.port(f"{name}valid"), self.port(f"{name}ready")
        ports = [self.port(p) for p in payload]
        ctx.set(ready, 0)
        self.latency = 1  # valid already high right after the handshake's edge: one cycle
        while not ctx.get(valid):
            await ctx.tick()
            self.latency += 1
            if self.latency > self.patience:
                raise AssertionError(f"{self.unit}: no {name.upper()} response in "
                                     f"{self.patience} cycles")
        offered = [ctx.get(p) for p in ports]
        requests = ("awready", "wready") if name == "b" else ("arready",)
        for _ in range(stall):
            if any(ctx.get(self.port(p)) for p in requests):
                raise AssertionError(f"{self.unit}: a second {'write' if name == 'b' else 'read'} "
                                     f"is taken while the {name.upper()} response waits")
            await ctx.tick()
            self.held += 1
            now = [ctx.get(valid)] + [ctx.get(p) for p in ports]
            if now != [1] + offered:
                raise AssertionError(f"{self.unit}: {name.upper()} response changed while not "
                                     f"accepted: {offered} then valid={now[0]} {now[1:]}")
        ctx.set(ready, 1)
        await ctx.tick()
        ctx.set(ready, 0)
        return offered

    async def write(self, addr: int, data: int, strb: int = 0xF, order: str = "together",
                    gap: int = 2, stall: int = 0) -> int:
        """One write; `order` presents AW and W together or one `gap` cycles after the other's
        handshake. Returns BRESP."""
        aw = ("aw", {"awaddr": addr, "awprot": 0})
        w = ("w", {"wdata": data, "wstrb": strb})
        if order == "together":
            await self._requests([aw, w])
        elif order in ("aw_first", "w_first"):
            first, second = (aw, w) if order == "aw_first" else (w, aw)
            await self._requests([first])
            for _ in range(gap):
                if self.ctx.get(self.port("bvalid")):
                    raise AssertionError(f"{self.unit}: BVALID before the {second[0].upper()} "
                                         "channel's handshake")
                await self.ctx.tick()
            await self._requests([second])
        else:
            raise ValueError(f"order must be one of {self.ORDERS}; got {order!r}")
        (resp,) = await self._response("b", ("bresp",), stall)
        return resp

    async def read(self, addr: int, stall: int = 0) -> tuple[int, int]:
        """One read: (RDATA, RRESP)."""
        await self._requests([("ar", {"araddr": addr, "arprot": 0})])
        data, resp = await self._response("r", ("rdata", "rresp"), stall)
        return data, resp


def run_testbench(dut, bench, watch=(), beside=()) -> list[tuple]:
    """Run the async testbench `bench(ctx)` on `dut` with a clock, and the testbenches `beside`
    alongside it (until `bench` ends); returns the values of the signals in `watch`, one tuple
    per cycle (sampled at each clock edge)."""
    seen: list[tuple] = []

    async def watcher(ctx):
        async for _, _, *values in ctx.tick().sample(*watch):
            seen.append(tuple(values))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    if watch:
        sim.add_testbench(watcher, background=True)
    for other in beside:
        sim.add_testbench(other, background=True)
    sim.add_testbench(bench)
    sim.run()
    return seen


class AxisInProcess:
    """An AXI4-Stream master for `amaranth.sim` testbenches on `<prefix>_t*` ports (the fast
    tier's counterpart of cocotbext-axi's AxiStreamSource): beats `(data, keep, last)` with random
    valid gaps. A beat not taken for `patience` cycles fails."""

    def __init__(self, ctx, dut, unit: str, rng: random.Random, gap: float = 0.0,
                 prefix: str = "s_axis", patience: int = PATIENCE):
        self.ctx, self.dut, self.unit, self.rng, self.gap = ctx, dut, unit, rng, gap
        self.prefix, self.patience = prefix, patience

    def port(self, name: str):
        return getattr(self.dut, f"{self.prefix}_{name}")

    async def send(self, beats) -> None:
        ctx = self.ctx
        for index, (data, keep, last) in enumerate(beats):
            while self.gap and self.rng.random() < self.gap:
                ctx.set(self.port("tvalid"), 0)
                await ctx.tick()
            for name, value in (("tdata", data), ("tkeep", keep), ("tlast", last), ("tvalid", 1)):
                ctx.set(self.port(name), value)
            for _ in range(self.patience):
                _, _, ready = await ctx.tick().sample(self.port("tready"))
                if ready:
                    break
            else:
                raise AssertionError(f"{self.unit}: `{self.prefix}` not ready for "
                                     f"{self.patience} cycles; {index} of {len(beats)} beats taken")
        ctx.set(self.port("tvalid"), 0)


def axis_ready(dut, rng: random.Random, stall: float = 0.0, prefix: str = "m_axis"):
    """A testbench holding `<prefix>_tready` low at random (`stall` of the cycles), for
    `run_testbench(beside=...)`; the transfers are read from its `watch` trace."""

    async def bench(ctx):
        ready = getattr(dut, f"{prefix}_tready")
        while True:
            ctx.set(ready, int(not stall or rng.random() >= stall))
            await ctx.tick()

    return bench
