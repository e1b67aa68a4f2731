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
from amaranth.lib import memory

from niti_hw.rtl.target import LOCAL

SLOTS = 3
SLOTS_DEPTH = 4  # the slots' memory: pointers wrap at a power of two


class OutputBuffer:
    """Attach to `m`: drive `push` (only while `en`) and `data`; `o` is the stream it feeds.
    `ready` is `en` again in a flip-flop of its own, for the unit's `i.ready`: the producer may sit
    far across the die, and one register driving both it and the pipeline's enables would have to
    sit far from one of them. Both carry LOCAL (keep), or synthesis merges them back into one.

    The slots are a small memory (LUT RAM on an FPGA) with a write pointer, a read pointer and a
    level. `push` is its write enable as it is: `en` already keeps the pipeline from pushing into
    a full buffer, so no `full` flag gates it (a FIFO's `w_en & w_rdy` put one more LUT and a
    long route between the pipeline's last valid flag and the LUT RAM's write enables)."""

    def __init__(self, m: Module, o, name: str = "out_buffer"):
        width = len(Value.cast(o.payload))
        m.submodules[name] = slots = memory.Memory(shape=width, depth=SLOTS_DEPTH, init=[])
        write, read = slots.write_port(), slots.read_port(domain="comb")
        self.en = Signal(init=1, name=f"{name}_en", attrs=LOCAL)
        self.ready = Signal(init=1, name=f"{name}_ready", attrs=LOCAL)
        self.push = Signal(name=f"{name}_push")
        self.data = Signal(o.payload.shape(), name=f"{name}_data")
        w_ptr = Signal(range(SLOTS_DEPTH), name=f"{name}_w_ptr")
        r_ptr = Signal(range(SLOTS_DEPTH), name=f"{name}_r_ptr")
        level = Signal(range(SLOTS + 1), name=f"{name}_level")
        pop = Signal(name=f"{name}_pop")
        level_next = Signal(range(SLOTS + 2), name=f"{name}_level_next")
        m.d.comb += [
            write.en.eq(self.push), write.addr.eq(w_ptr), write.data.eq(self.data),
            read.addr.eq(r_ptr),
            o.valid.eq(level != 0),
            o.payload.eq(read.data),
            pop.eq(o.valid & o.ready),
            level_next.eq(level + self.push - pop),
        ]
        m.d.sync += [
            w_ptr.eq(w_ptr + self.push), r_ptr.eq(r_ptr + pop), level.eq(level_next),
            self.en.eq(level_next <= SLOTS - 2), self.ready.eq(level_next <= SLOTS - 2),
        ]


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
