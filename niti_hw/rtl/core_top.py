"""The NITI core as a board sees it: AXI4-Lite registers for run control and status
(`niti_hw.registers.core_register_map`), and an AXI4-Stream slave and master that load programs
and tensors into the core and read the banks back (`niti_hw.stream_frames`' frames).

Nothing reaches the core's memories while it runs: a frame that comes while it is busy is refused
(`Error.BUSY`, sticky in STREAM.error) and dropped, and CTRL.start is refused while a frame is in
flight (STATUS.refused), so a run never sees a half-loaded tensor and a load never changes a run.
"""

from __future__ import annotations

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal
from amaranth.lib import fifo, wiring
from amaranth.lib.wiring import In, Out

from niti_hw.golden.tensor import TENSOR_KINDS
from niti_hw.params import MAX_ACC_BITS, HardwareParams
from niti_hw.perf.timing import BANK_READ_LATENCY, CORE_ANSWER_FIFO_LATENCY
from niti_hw.program.isa import Bank
from niti_hw.registers import (DEFAULT_PROGRAM_WORDS, EXPONENT_BITS, WORD_BITS,
                               core_register_map)
from niti_hw.rtl.axi_lite import AxiLiteRegisters, axi_lite_members
from niti_hw.rtl.banks import read_port_signature, write_port_signature
from niti_hw.rtl.core import PROGRAM_WORDS, Core
from niti_hw.rtl.instruction import EXPONENT
from niti_hw.rtl.sequencer import imem_write_signature
from niti_hw.rtl.stream_loader import (M_AXIS, S_AXIS, FrameParser, axis_members,
                                       read_command_layout, read_counter)
from niti_hw.stream_frames import BYTE_BITS, PROGRAM, PROGRAM_WORD_BITS, beat_bits, core_depths

if EXPONENT.width != EXPONENT_BITS or PROGRAM_WORDS != DEFAULT_PROGRAM_WORDS:
    raise RuntimeError("registers.EXPONENT_BITS and DEFAULT_PROGRAM_WORDS must be the width of "
                       "rtl.instruction.EXPONENT and rtl.core.PROGRAM_WORDS")
ACC_BEATS = MAX_ACC_BITS // BYTE_BITS
"""Beats of an int32 bank row: a beat is `lanes` bytes, the row `lanes` int32 values."""
READ_FIFO = 8
"""Answer beats the reader holds: reads are issued only while they have room, so backpressure
on m_axis never loses a beat in the banks' read pipeline."""
if CORE_ANSWER_FIFO_LATENCY != 2:
    raise RuntimeError("rtl/core_top.py answers through a SyncFIFOBuffered (its write, then its "
                       "output register): perf.timing's CORE_ANSWER_FIFO_LATENCY must say 2")


def target_depths(params: HardwareParams, program_words: int) -> list[int]:
    """Beats of each frame target: the four banks (`Bank` order), then `PROGRAM`."""
    return [depth for _, depth in sorted(core_depths(params, program_words).items())]


def check_top_params(params: HardwareParams) -> None:
    if params.lanes < ACC_BEATS:
        raise ValueError(f"the core top needs lanes >= {ACC_BEATS} (a beat holds whole int32 "
                         f"values and program words); got lanes={params.lanes}")


class BeatWriter(wiring.Component):
    """A `FrameParser`'s writes (one-hot `wr_en` over the banks and PROGRAM) into the core: an
    int8 bank's beat is a row of `lanes` values; an int32 bank's is a quarter row (lane mask);
    a program beat is `lanes // 4` words, written one per cycle (`hold` stops the parser
    meanwhile). A bank beat reaches the core's write port in the cycle it comes, a program
    beat's words that cycle and the next ones. `pending`: a write not yet handed on.
    """

    def __init__(self, params: HardwareParams, program_words: int):
        check_top_params(params)
        self.params, self.program_words = params, program_words
        depths = target_depths(params, program_words)
        super().__init__({
            "wr_en": In(len(depths)), "wr_addr": In(range(max(depths))),
            "wr_data": In(beat_bits(params)),
            "bank": Out(write_port_signature(params)),
            "imem": Out(imem_write_signature(program_words)),
            "hold": Out(1), "pending": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        L, port = self.params.lanes, self.bank
        per = L // ACC_BEATS  # int32 values in a beat
        acc, hot = self.wr_en[Bank.ACC], self.wr_en[:len(Bank)]
        quarter = self.wr_addr[:ACC_BEATS.bit_length() - 1]
        m.d.comb += [
            port.en.eq(hot.any()),
            port.bank.eq(Cat(*[Cat(hot[b] for b in Bank if b >> bit & 1).any()
                               for bit in range(len(port.bank))])),
            port.row.eq(Mux(acc, self.wr_addr >> (ACC_BEATS.bit_length() - 1), self.wr_addr)),
            port.mask.eq(Mux(acc, Const((1 << per) - 1, L) << (quarter * per), (1 << L) - 1)),
        ]
        for lane in range(L):
            word = self.wr_data.word_select(lane % per, MAX_ACC_BITS)
            m.d.comb += port.data[lane].eq(Mux(acc, word, self.wr_data.word_select(lane,
                                                                                   BYTE_BITS)))

        words = beat_bits(self.params) // PROGRAM_WORD_BITS
        program, imem = self.wr_en[PROGRAM], self.imem
        part = Signal(range(words))
        held = Signal.like(self.wr_data, reset_less=True)
        base = Signal.like(self.wr_addr, reset_less=True)
        with m.If(program):
            m.d.sync += [held.eq(self.wr_data), base.eq(self.wr_addr), part.eq(words > 1)]
        with m.Elif(part != 0):
            m.d.sync += part.eq(Mux(part == words - 1, 0, part + 1))
        m.d.comb += [
            imem.en.eq(program | (part != 0)),
            imem.addr.eq(Mux(program, self.wr_addr * words, base * words + part)),
            imem.data.eq(Mux(program, self.wr_data[:PROGRAM_WORD_BITS],
                             held.word_select(part, PROGRAM_WORD_BITS))),
            self.hold.eq((program & (words > 1)) | ((part != 0) & (part != words - 1))),
            self.pending.eq(self.wr_en.any() | (part != 0)),
        ]
        return m


class BeatReader(wiring.Component):
    """A READ (`command`, taken on `start` unless `active`) streamed from the core's banks on
    m_axis through a bank read port `rd`: `length` beats from beat `base`, TLAST on the last,
    TKEEP all ones; an int8 bank's beat is the low bytes of a row, an int32 bank's a quarter row.

    Throughput: a beat per cycle while m_axis is ready. Latency: the first beat is valid
    `1 + BANK_READ_LATENCY + CORE_ANSWER_FIFO_LATENCY` cycles after `start` (perf.timing's
    CORE_STREAM_READ_LATENCY after a READ header). `active` while addresses are issued;
    `pending` while reads are in the banks' pipeline. A read is issued only while the answer
    FIFO (`READ_FIFO` beats, counting reads in flight) has room.
    """

    def __init__(self, params: HardwareParams, program_words: int):
        check_top_params(params)
        self.params = params
        depths = target_depths(params, program_words)
        super().__init__({
            "start": In(1), "command": In(read_command_layout(len(depths), max(depths))),
            "active": Out(1), "pending": Out(1),
            "rd": Out(read_port_signature(params)),
            **axis_members(M_AXIS, beat_bits(params), Out),
        })

    def elaborate(self, platform):
        m = Module()
        L, width, command = self.params.lanes, beat_bits(self.params), self.command
        per, shift = L // ACC_BEATS, ACC_BEATS.bit_length() - 1
        m.submodules.answers = answers = fifo.SyncFIFOBuffered(width=width + 1, depth=READ_FIFO)
        owed = Signal(range(READ_FIFO + 1))  # issued and not yet taken off m_axis
        issue, pop = Signal(), Signal()
        addr, at_last, bank = read_counter(m, self.start, command, self.active, issue)
        m.d.comb += [issue.eq(self.active & (owed < READ_FIFO)),
                     pop.eq(answers.r_rdy & self.m_axis_tready)]
        m.d.sync += owed.eq(owed + issue - pop)
        acc = bank == Bank.ACC
        m.d.comb += [self.rd.en.eq(issue), self.rd.bank.eq(bank),
                     self.rd.row.eq(Mux(acc, addr >> shift, addr))]

        # The read's tag travels beside the banks' pipeline: valid, last, int32 bank, quarter.
        tag, stages = Cat(issue, at_last, acc, addr[:shift]), []
        for stage in range(BANK_READ_LATENCY):
            delayed = Signal.like(tag, name=f"tag{stage}")
            m.d.sync += delayed.eq(tag)
            tag = delayed
            stages.append(tag[0])
        valid, last, wide, quarter = tag[0], tag[1], tag[2], tag[3:]
        row = self.rd.data
        narrow = Cat(row[lane][:BYTE_BITS] for lane in range(L))
        quarters = Array(Cat(row[q * per + n][:MAX_ACC_BITS] for n in range(per))
                         for q in range(ACC_BEATS))
        m.d.comb += [answers.w_en.eq(valid),
                     answers.w_data.eq(Cat(Mux(wide, quarters[quarter], narrow), last)),
                     self.pending.eq(Cat(stages).any())]
        m.d.comb += [self.m_axis_tdata.eq(answers.r_data[:width]),
                     self.m_axis_tlast.eq(answers.r_data[width]),
                     self.m_axis_tkeep.eq((1 << (width // BYTE_BITS)) - 1),
                     self.m_axis_tvalid.eq(answers.r_rdy), answers.r_en.eq(self.m_axis_tready)]
        return m


class CoreTop(wiring.Component):
    """`Core` behind an AXI4-Lite slave (`s_axil_*`, the registers of `core_register_map`) and
    an AXI4-Stream slave (`s_axis_*`: WRITE frames into the banks and PROGRAM, READ frames) and
    master (`m_axis_*`: the READ answers).

    Run control: CTRL.start starts the core unless it is busy or a frame is in flight (then
    STATUS.refused, sticky); STATUS.busy/done/error, CAUSE and PC are the sequencer's; CYCLES
    counts the cycles of the last run from the start to done or error, `program_cycles`
    (saturating). CONFIG feeds the run's settings,
    EXP_INDEX/EXP_VALUE the exponent registers (a write while busy is ignored). Stream frames:
    `FrameParser`'s rules and timing, a header while busy is BUSY; STREAM.error is its sticky
    code, CTRL.stream_clear clears it. A bank beat is in the core's bank 3 cycles after its
    handshake (the parser's register and the banks').
    """

    def __init__(self, params: HardwareParams, program_words: int = PROGRAM_WORDS):
        check_top_params(params)
        self.params, self.program_words = params, program_words
        self.regmap = core_register_map(params, program_words)
        self.core = Core(params, program_words)
        depths = target_depths(params, program_words)
        self._regs = AxiLiteRegisters(self.regmap)
        self._parser = FrameParser(params, depths, write_only=(PROGRAM,))
        self._writer = BeatWriter(params, program_words)
        self._reader = BeatReader(params, program_words)
        width = beat_bits(params)
        super().__init__({**axi_lite_members(self.regmap.addr_bits),
                          **axis_members(S_AXIS, width, In), **axis_members(M_AXIS, width, Out)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.core = core = self.core
        m.submodules.regs = regs = self._regs
        m.submodules.parser = parser = self._parser
        m.submodules.writer = writer = self._writer
        m.submodules.reader = reader = self._reader
        for name, member in self.signature.members.items():  # the bus ports, passed through
            inner = regs if name.startswith("s_axil") else (
                parser if name.startswith(S_AXIS) else reader)
            if member.flow == In:
                m.d.comb += getattr(inner, name).eq(getattr(self, name))
            else:
                m.d.comb += getattr(self, name).eq(getattr(inner, name))

        m.d.comb += [
            parser.busy.eq(core.busy), parser.hold.eq(writer.hold),
            parser.reader_active.eq(reader.active),
            parser.error_clear.eq(regs.ctrl_stream_clear), regs.stream_error.eq(parser.error),
            writer.wr_en.eq(parser.wr_en), writer.wr_addr.eq(parser.wr_addr),
            writer.wr_data.eq(parser.wr_data),
            reader.start.eq(parser.read_start), reader.command.eq(parser.command),
        ]
        wiring.connect(m, writer.bank, core.host_wr)
        wiring.connect(m, writer.imem, core.imem)
        wiring.connect(m, reader.rd, core.host_rd)

        loading, go, refused, cycles = Signal(), Signal(), Signal(), Signal(WORD_BITS)
        m.d.comb += [
            loading.eq(~parser.idle | reader.active | reader.pending | writer.pending),
            go.eq(regs.ctrl_start & ~core.busy & ~loading),
            core.start.eq(go),
            regs.status_busy.eq(core.busy), regs.status_done.eq(core.done),
            regs.status_error.eq(core.error), regs.status_refused.eq(refused),
            regs.status_loading.eq(loading),
            regs.cause_cause.eq(core.cause), regs.pc_pc.eq(core.pc),
            regs.cycles_count.eq(cycles),
            core.config.m_u.eq(regs.config_m_u),
            core.exp_rd.index.eq(regs.exp_index_index),
            regs.exp_value_value.eq(core.exp_rd.value),
            core.exp_wr.en.eq(regs.exp_value_value_write),
            core.exp_wr.index.eq(regs.exp_index_index),
            core.exp_wr.value.eq(regs.exp_value_value_wdata),
        ]
        for n, kind in enumerate(TENSOR_KINDS):
            m.d.comb += core.config.modes[n].eq(getattr(regs, f"config_mode_{kind}"))
        with m.If(regs.status_refused_clear):
            m.d.sync += refused.eq(0)
        with m.If(regs.ctrl_start & ~go):  # a new refusal wins over a clear
            m.d.sync += refused.eq(1)
        with m.If(go):  # the start's cycle counts: CYCLES is perf.timing's program_cycles
            m.d.sync += cycles.eq(1)
        with m.Elif(core.busy & (cycles != (1 << WORD_BITS) - 1)):
            m.d.sync += cycles.eq(cycles + 1)
        return m
