"""Output buffer that lets a pipeline stall on a registered clock enable.

A pipeline whose every register is gated by `~o.valid | o.ready` has the consumer's ready in a
combinational path to its whole clock-enable net; on ECP5 that net, not the datapath, set Fmax.
Here the pipeline writes its output stage into a small FIFO instead, and its enable `en` is a
register that drops as soon as the FIFO could fill: backpressure reaches the pipeline one cycle
late, which one spare slot absorbs. A third slot keeps a stream without backpressure at one beat
per cycle. Latency is unchanged (a beat written in cycle t is valid on `o` in t + 1, as an output
register would be); throughput one beat per cycle.
"""

from __future__ import annotations

from amaranth.hdl import Const, Module, Signal, Value
from amaranth.lib import fifo

from niti_hw.rtl.target import LOCAL

SLOTS = 3


class OutputBuffer:
    """Attach to `m`: drive `push` (only while `en`) and `data`; `o` is the stream it feeds.
    `ready` is `en` again in a flip-flop of its own, for the unit's `i.ready`: the producer may sit
    far across the die, and one register driving both it and the pipeline's enables would have to
    sit far from one of them. Both carry LOCAL (keep), or synthesis merges them back into one."""

    def __init__(self, m: Module, o, name: str = "out_buffer"):
        width = len(Value.cast(o.payload))
        m.submodules[name] = buf = fifo.SyncFIFO(width=width, depth=SLOTS)
        self.en = Signal(init=1, name=f"{name}_en", attrs=LOCAL)
        self.ready = Signal(init=1, name=f"{name}_ready", attrs=LOCAL)
        self.push = Signal(name=f"{name}_push")
        self.data = Signal(o.payload.shape(), name=f"{name}_data")
        pop = Signal(name=f"{name}_pop")
        level_next = Signal(range(SLOTS + 2), name=f"{name}_level_next")
        m.d.comb += [
            buf.w_en.eq(self.push),
            buf.w_data.eq(self.data),
            o.valid.eq(buf.r_rdy),
            buf.r_en.eq(o.ready),
            o.payload.eq(buf.r_data),
            pop.eq(buf.r_rdy & buf.r_en),
            level_next.eq(buf.level + self.push - pop),
        ]
        m.d.sync += [self.en.eq(level_next <= SLOTS - 2), self.ready.eq(level_next <= SLOTS - 2)]


class OutputRegister:
    """`OutputBuffer`'s interface for a consumer that is always ready: `en` is constant high and the
    output is one register (payload without reset), so a beat pushed in cycle t is valid on `o` in
    t + 1, as through the buffer; `o.ready` is not read."""

    def __init__(self, m: Module, o, name: str = "out_reg"):
        self.en = self.ready = Const(1)
        self.push = Signal(name=f"{name}_push")
        self.data = Signal(o.payload.shape(), name=f"{name}_data")
        payload = Signal(o.payload.shape(), name=f"{name}_payload", reset_less=True)
        valid = Signal(name=f"{name}_valid")
        m.d.sync += [valid.eq(self.push), payload.eq(self.data)]
        m.d.comb += [o.valid.eq(valid), o.payload.eq(payload)]
