"""The tensor datapath's replay: the whole tensor read back from the scratchpad in row-major order
into the ShiftRound, `lanes` elements per beat, the final beat's `keep` cropped to the tensor.

Part of `niti_hw.rtl.datapath.Datapath`'s module, as `DrainWalk` is. Timing: reads are issued
`SCRATCHPAD_READ_LATENCY` beats ahead of the rounder's input, one beat per cycle; the read pipeline
and its valid/last flags advance together and freeze while the rounder stalls.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal

from niti_hw.perf.timing import SCRATCHPAD_READ_LATENCY
from niti_hw.rtl.layouts import SHIFT
from niti_hw.rtl.scratchpad import element_bits
from niti_hw.rtl.shift_round import low_mask


class Replay:
    """Row-major reads of the tensor into `rounder`, with the shift `k` every beat carries.

    `start` loads `last_beat` (ceil(m * n / lanes) - 1) and `final_keep` from the tensor's size;
    `replay` held high issues reads, and `done` says the last beat is issued.
    """

    def __init__(self, m: Module, p, pad, rounder):
        L = p.lanes
        self.lanes = L
        last_beat = Signal(element_bits(p))  # final replay beat: ceil(m * n / lanes) - 1
        final_keep = Signal(L)
        # k is computed once, beside the detector, into tensor_k; as the replay starts it is copied
        # to the rounder's k and to status.k (the first beat reaches the rounder two cycles
        # later). The copies are plain register-to-register routes to places far apart, and no
        # twin registers for synthesis to merge.
        tensor_k = Signal(SHIFT)
        k = Signal(SHIFT)
        rd_beat = Signal(element_bits(p))
        replay = Signal()
        at_last = Signal()  # rd_beat == last_beat, kept beside rd_beat: no compare when issuing
        last_but_one = Signal(element_bits(p))  # last_beat - 1, set while the GEMM runs
        rd_valid = [Signal(name=f"rd_valid{n}") for n in range(SCRATCHPAD_READ_LATENCY)]
        rd_last = [Signal(name=f"rd_last{n}") for n in range(SCRATCHPAD_READ_LATENCY)]
        # The read enable reaches every block RAM, far from the replay counters: it has a net and
        # a copy of the last valid flag of its own, so each can be placed beside what it drives.
        ram_valid = Signal(name="ram_valid")  # rd_valid[-1] again, for the RAMs
        advance = Signal()
        ram_advance = Signal()
        issue = Signal()
        m.d.comb += [
            advance.eq(~rd_valid[-1] | rounder.i.ready),
            ram_advance.eq(~ram_valid | rounder.i.ready),
            issue.eq(replay & advance),
            pad.rd_en.eq(ram_advance),
            pad.rd_beat.eq(rd_beat),
            rounder.i.valid.eq(rd_valid[-1]),
            rounder.i.p.data.eq(pad.rd_data),
            rounder.i.p.k.eq(k),
            rounder.i.p.keep.eq(Mux(rd_last[-1], final_keep, (1 << L) - 1)),
            rounder.i.p.last.eq(rd_last[-1]),
        ]
        with m.If(advance):
            m.d.sync += [rd_valid[0].eq(issue), rd_last[0].eq(issue & at_last)]
            m.d.sync += [rd_valid[n].eq(rd_valid[n - 1]) for n in range(1, len(rd_valid))]
            m.d.sync += [rd_last[n].eq(rd_last[n - 1]) for n in range(1, len(rd_last))]
        with m.If(ram_advance):
            m.d.sync += ram_valid.eq(rd_valid[-2])
        with m.If(issue):
            m.d.sync += [rd_beat.eq(rd_beat + 1), at_last.eq(rd_beat == last_but_one)]
        self.tensor_k, self.k, self.replay = tensor_k, k, replay
        self.last_beat, self.final_keep, self.last_but_one = last_beat, final_keep, last_but_one
        self.rd_beat, self.at_last = rd_beat, at_last
        self.done = issue & at_last  # the last beat is issued this cycle

    def start(self, size_check) -> list:
        """The CHECK state's: the beat count and final keep of a tensor of `size_check.size`
        elements, reads from its first beat (the last too when `size_check.one_beat`)."""
        L, size = self.lanes, size_check.size
        return [self.last_beat.eq((size - 1) >> (L.bit_length() - 1)),
                self.final_keep.eq(low_mask((size - 1)[:L.bit_length() - 1] + 1, L)),
                self.rd_beat.eq(0), self.at_last.eq(size_check.one_beat)]
