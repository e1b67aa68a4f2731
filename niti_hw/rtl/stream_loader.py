"""AXI4-Stream bank loader: frames of `niti_hw.stream_frames` write the on-chip banks, and READ
frames stream a bank range back out, so a host's DMA loads programs' tensors (weights, batches)
and reads results back. The frame format, its checks and error codes are stream_frames'."""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from niti_hw.params import HardwareParams
from niti_hw.perf.timing import STREAM_CHECK_CYCLES, STREAM_READ_LATENCY, STREAM_WRITE_LATENCY
from niti_hw.rtl.output_buffer import OutputBuffer
from niti_hw.rtl.scratchpad import NO_COLLISIONS
from niti_hw.stream_frames import (ERROR_BITS, HEADER_BITS, HEADER_FIELDS, Error, Op,
                                   bank_depths, beat_bits, header_beats)

S_AXIS, M_AXIS = "s_axis", "m_axis"
"""Port prefixes: `s_axis_tdata`, ... as cocotbext-axi's `AxiStreamBus.from_prefix` and vendor
tools expect them."""
READ_STAGES = 4
"""StreamReader's cycles from `start` to its first word valid: the address register, the RAM's
read, the register behind the RAM, the output buffer."""
if (STREAM_CHECK_CYCLES, STREAM_WRITE_LATENCY, STREAM_READ_LATENCY) != (2, 2, 2 + READ_STAGES):
    raise RuntimeError("rtl/stream_loader.py checks a header in two cycles, registers each write "
                       "once and reads in READ_STAGES: perf.timing's StreamLoader section must say "
                       "so")

HEADER = data.StructLayout(dict(HEADER_FIELDS))


def axis_members(prefix: str, width: int, flow) -> dict:
    """AXI4-Stream ports as flat members (TDATA, TKEEP, TLAST, TVALID with `flow`, TREADY
    against it): `In` for a slave, `Out` for a master."""
    members = {"tdata": flow(width), "tkeep": flow(width // 8), "tlast": flow(1),
               "tvalid": flow(1), "tready": flow.flip()(1)}
    return {f"{prefix}_{name}": member for name, member in members.items()}


def named_port(bank: memory.Memory, kind, name: str):
    """`bank.read_port()` or `write_port()` (`kind` ReadPort or WritePort) in the sync domain,
    its signals named `<name>__addr`, ... in the Verilog (no name is traced in a comprehension)."""
    signature = kind.Signature(addr_width=ceil_log2(bank.depth), shape=bank.shape)
    return kind(signature, memory=bank, domain="sync", path=(name,))


def read_command_layout(banks: int, depth: int) -> data.StructLayout:
    """A checked READ: `length` >= 1 words of bank `bank` from word `base`."""
    return data.StructLayout({"bank": range(banks), "base": range(depth),
                              "length": range(depth + 1)})


def read_counter(m: Module, start, command, active, advance):
    """A READ command's address counter: `command` taken on `start` unless `active`, which it
    sets; then one address per cycle `advance` holds, `active` cleared after the last. Returns
    (addr, at_last, bank) registers."""
    layout = command.shape()
    addr = Signal(layout["base"].shape, reset_less=True)
    left = Signal(layout["length"].shape, reset_less=True)
    at_last = Signal(reset_less=True)  # left == 1, kept beside the counter
    bank = Signal(layout["bank"].shape, reset_less=True)
    with m.If(start & ~active):
        m.d.sync += [addr.eq(command.base), left.eq(command.length),
                     at_last.eq(command.length == 1), bank.eq(command.bank), active.eq(1)]
    with m.If(advance):
        m.d.sync += [addr.eq(addr + 1), left.eq(left - 1), at_last.eq(left == 2)]
        with m.If(at_last):
            m.d.sync += active.eq(0)
    return addr, at_last, bank


class StreamReader(wiring.Component):
    """Streams `command.length` words of bank `command.bank` from word `command.base` out on
    m_axis, TLAST on the last, TKEEP all ones.

    `start` takes the command unless `active`, which is high while addresses are issued.
    Throughput: one word per cycle while m_axis is ready. Latency: the first word is valid
    `READ_STAGES` cycles after `start`. Backpressure reaches the address counter a cycle late
    through the output buffer's registered enable, which holds every stage meanwhile.
    """

    def __init__(self, params: HardwareParams, banks: list[memory.Memory]):
        self.params = params
        self._ports = [named_port(bank, memory.ReadPort, f"bank{n}_read")
                       for n, bank in enumerate(banks)]
        depth = max(bank.depth for bank in banks)
        super().__init__({
            "start": In(1),
            "command": In(read_command_layout(len(banks), depth)),
            "active": Out(1),
            **axis_members(M_AXIS, beat_bits(params), Out),
        })

    def elaborate(self, platform):
        m = Module()
        command, width = self.command, beat_bits(self.params)
        out_stream = stream.Signature(data.StructLayout({"data": width, "last": 1})).create()
        out = OutputBuffer(m, out_stream)
        m.d.comb += [
            self.m_axis_tdata.eq(out_stream.payload.data),
            self.m_axis_tlast.eq(out_stream.payload.last),
            self.m_axis_tkeep.eq(Const(-1, width // 8)),
            self.m_axis_tvalid.eq(out_stream.valid),
            out_stream.ready.eq(self.m_axis_tready),
        ]
        addr, at_last, bank = read_counter(m, self.start, command, self.active,
                                           out.en & self.active)

        # Two stages, each advanced by the output buffer's enable: the RAMs' read, then a
        # register behind each RAM (a RAM's clock-to-out leaves no time for the bank mux).
        valid, last, which = self.active, at_last, bank
        for stage in ("read", "held"):
            valid_next = Signal(name=f"{stage}_valid")
            last_next = Signal(name=f"{stage}_last", reset_less=True)
            which_next = Signal.like(bank, name=f"{stage}_bank", reset_less=True)
            with m.If(out.en):
                m.d.sync += [valid_next.eq(valid), last_next.eq(last), which_next.eq(which)]
            valid, last, which = valid_next, last_next, which_next
        words = []
        for n, port in enumerate(self._ports):
            m.d.comb += [port.addr.eq(addr), port.en.eq(out.en)]
            word = Signal(width, name=f"bank{n}_word", reset_less=True)
            with m.If(out.en):
                m.d.sync += word.eq(port.data)
            words.append(word)
        with m.Switch(which):
            for n, word in enumerate(words):
                with m.Case(n):
                    m.d.comb += out.data.data.eq(word)
        m.d.comb += [out.push.eq(out.en & valid), out.data.last.eq(last)]
        return m


class FrameParser(wiring.Component):
    """The frame logic of a loader: takes frames on s_axis, checks them, and hands on what they
    ask for. Targets (banks) of `depths` beats each; those in `write_only` refuse a READ (OP).

    Writes: a payload beat's handshake puts `wr_data` at `wr_addr` of the targets set in the
    one-hot `wr_en` a cycle later (registered). READs: a good READ header pulses `read_start`
    with `command` held, while `reader_active` is low (no beat is taken while it is high). `busy`
    refuses a header (BUSY, checked before the rest); `hold` takes no beat. `idle`: between
    frames (no header beat taken, no check running), so a core may start without a frame cut
    in two. Timing and `error`: `StreamLoader`'s.
    """

    def __init__(self, params: HardwareParams, depths: list[int], write_only=()):
        self.params, self.depths, self.write_only = params, list(depths), tuple(write_only)
        room = 1 << dict(HEADER_FIELDS)["length"]
        if max(depths) >= room:
            raise ValueError(f"a bank of {max(depths)} beats is beyond the header's reach "
                             f"({room - 1} beats)")
        width, depth = beat_bits(params), max(depths)
        super().__init__({
            **axis_members(S_AXIS, width, In),
            "error": Out(ERROR_BITS), "error_clear": In(1),
            "busy": In(1), "hold": In(1), "idle": Out(1),
            "wr_en": Out(len(depths)), "wr_addr": Out(range(depth)), "wr_data": Out(width),
            "read_start": Out(1), "command": Out(read_command_layout(len(depths), depth)),
            "reader_active": In(1),
        })

    def elaborate(self, platform):
        m = Module()
        width, beats = beat_bits(self.params), header_beats(self.params)
        tdata, tlast = self.s_axis_tdata, self.s_axis_tlast
        keep_ok = Signal()
        fire = Signal()
        checking = Signal()  # the check cycles, a flop of its own: TREADY decodes no state
        m.d.comb += [
            keep_ok.eq(self.s_axis_tkeep.all()),
            self.s_axis_tready.eq(~self.reader_active & ~checking & ~self.hold),
            fire.eq(self.s_axis_tvalid & self.s_axis_tready),
        ]
        raw = Signal(beats * width, reset_less=True)  # the header's beats, the last one on top
        header = data.View(HEADER, raw[:HEADER_BITS])
        count = Signal(range(beats))
        keep_bad = Signal()
        header_last = Signal()

        report, code = self._error_register(m)
        verdict = self._verdict(m, header, keep_bad, header_last)
        reading = header.op == Op.READ
        m.d.comb += [self.command.bank.eq(header.bank), self.command.base.eq(header.base),
                     self.command.length.eq(header.length)]

        # The payload's place: word address, words left, and the bank as one enable bit each.
        depth = max(self.depths)
        addr = Signal(range(depth), reset_less=True)
        left = Signal(range(depth + 1), reset_less=True)
        at_last = Signal(reset_less=True)  # left == 1, kept beside the counter
        bank_hot = Signal(len(self.depths), reset_less=True)
        write = Signal()
        m.d.sync += [self.wr_addr.eq(addr), self.wr_data.eq(tdata),
                     self.wr_en.eq(Mux(write, bank_hot, 0))]

        with m.FSM() as fsm:
            with m.State("HEADER"):
                with m.If(fire):
                    m.d.sync += raw.eq(Cat(raw[width:], tdata) if beats > 1 else tdata)
                    with m.If(count == beats - 1):
                        m.d.sync += [count.eq(0), header_last.eq(tlast), checking.eq(1),
                                     keep_bad.eq(keep_bad | ~keep_ok)]
                        m.next = "CHECK"
                    with m.Elif(tlast):
                        m.d.comb += [report.eq(1), code.eq(Mux(keep_bad | ~keep_ok, Error.KEEP,
                                                               Error.EARLY_LAST))]
                        m.d.sync += [count.eq(0), keep_bad.eq(0)]
                    with m.Else():
                        m.d.sync += [count.eq(count + 1), keep_bad.eq(keep_bad | ~keep_ok)]
            with m.State("CHECK"):  # the checks are registered
                m.next = "DECIDE"
            with m.State("DECIDE"):  # the reader is idle: no beat is taken while it is not
                m.d.sync += [checking.eq(0), keep_bad.eq(0)]
                with m.If(verdict != Error.NONE):
                    m.d.comb += [report.eq(1), code.eq(verdict)]
                    m.next = "HEADER"
                    with m.If(~header_last):
                        m.next = "DROP"
                with m.Elif(reading):
                    m.d.comb += self.read_start.eq(1)
                    m.next = "HEADER"
                with m.Else():
                    m.d.sync += [addr.eq(header.base), left.eq(header.length),
                                 at_last.eq(header.length == 1),
                                 bank_hot.eq(Const(1, len(self.depths)) << header.bank)]
                    m.next = "PAYLOAD"
            with m.State("PAYLOAD"):
                with m.If(fire):
                    early, late = tlast & ~at_last, ~tlast & at_last
                    with m.If(~keep_ok | early | late):
                        m.d.comb += [report.eq(1), code.eq(Mux(~keep_ok, Error.KEEP,
                                                               Mux(early, Error.EARLY_LAST,
                                                                   Error.LATE_LAST)))]
                        m.next = "HEADER"
                        with m.If(~tlast):
                            m.next = "DROP"
                    with m.Else():
                        m.d.comb += write.eq(1)
                        m.d.sync += [addr.eq(addr + 1), left.eq(left - 1), at_last.eq(left == 2)]
                        with m.If(at_last):
                            m.next = "HEADER"
            with m.State("DROP"):
                with m.If(fire & tlast):
                    m.next = "HEADER"
        # Outside the FSM's process: a plain assignment, which Icarus evaluates from time 0.
        m.d.comb += self.idle.eq(fsm.ongoing("HEADER") & (count == 0))
        return m

    def _error_register(self, m: Module):
        """(report, code): a new error's strobe and code, driven by the frame logic; `error` keeps
        the first until cleared."""
        report = Signal()
        code = Signal(ERROR_BITS)
        with m.If(report & ((self.error == Error.NONE) | self.error_clear)):
            m.d.sync += self.error.eq(code)
        with m.Elif(self.error_clear):
            m.d.sync += self.error.eq(Error.NONE)
        return report, code

    def _verdict(self, m: Module, header, keep_bad, header_last) -> Signal:
        """The header's error code (NONE if good), checks in stream_frames' order: each check is
        registered in the first check cycle, the code picked from them in the second (the
        range's adder and the pick do not fit one cycle)."""
        bits = ceil_log2(max(self.depths) + 1)  # base and length in range
        bank_depth = Signal(bits)
        with m.Switch(header.bank):
            for n, depth in enumerate(self.depths):
                with m.Case(n):
                    m.d.comb += bank_depth.eq(depth)
        writing, reading = header.op == Op.WRITE, header.op == Op.READ
        if self.write_only:
            reading_bank = Cat(header.bank == n for n in self.write_only).any()
            reading = reading & ~reading_bank
        out_of_range = ((header.length == 0) | header.base[bits:].any() |
                        header.length[bits:].any() |
                        (header.base[:bits] + header.length[:bits] > bank_depth))
        checks = ((Error.BUSY, self.busy), (Error.KEEP, keep_bad),
                  (Error.OP, ~(writing | reading)),
                  (Error.BANK, header.bank >= len(self.depths)), (Error.RANGE, out_of_range),
                  (Error.EARLY_LAST, writing & header_last),
                  (Error.LATE_LAST, reading & ~header_last))
        failed = Signal(len(checks))
        m.d.sync += failed.eq(Cat(check for _, check in checks))
        pick = Const(Error.NONE, ERROR_BITS)
        for n, (error, _) in reversed(list(enumerate(checks))):  # the first failed check wins
            pick = Mux(failed[n], error, pick)
        verdict = Signal(ERROR_BITS)
        m.d.comb += verdict.eq(pick)
        return verdict


class StreamLoader(wiring.Component):
    """The banks of `stream_frames.bank_depths` (one `beat_bits`-wide memory each, in `Bank`
    order), written by frames on s_axis (`FrameParser`); READ frames are answered on m_axis
    (`StreamReader`).

    Throughput: one payload beat per cycle; at full rate a frame of n words holds the slave
    `stream_frame_cycles(n, header_beats(params))` cycles (the header's beats, the checks, the
    payload or the READ's addresses: no beat is taken while a READ is issued, so a later WRITE
    never changes what it reads). Latency: a payload beat is in its bank `STREAM_WRITE_LATENCY`
    cycles after its handshake; a READ's first word is valid `STREAM_READ_LATENCY` cycles after
    its header's last beat. `error` holds the first error's code (`stream_frames.Error`) until
    `error_clear`; a clear in the cycle of a new error keeps the new one.
    """

    def __init__(self, params: HardwareParams):
        self.params = params
        width = beat_bits(params)
        depths = [depth for _, depth in sorted(bank_depths(params).items())]
        self._parser = FrameParser(params, depths)
        self.banks = [memory.Memory(shape=width, depth=depth, init=[], attrs=NO_COLLISIONS)
                      for depth in depths]
        self._writes = [named_port(bank, memory.WritePort, f"bank{n}_write")
                        for n, bank in enumerate(self.banks)]
        self._reader = StreamReader(params, self.banks)
        super().__init__({
            **axis_members(S_AXIS, width, In),
            **axis_members(M_AXIS, width, Out),
            "error": Out(ERROR_BITS),
            "error_clear": In(1),
        })

    def elaborate(self, platform):
        m = Module()
        for n, bank in enumerate(self.banks):
            m.submodules[f"bank{n}"] = bank
        m.submodules.parser = parser = self._parser
        m.submodules.reader = reader = self._reader
        for name in ("tdata", "tkeep", "tlast", "tvalid"):
            m.d.comb += [getattr(self, f"{M_AXIS}_{name}").eq(getattr(reader, f"{M_AXIS}_{name}")),
                         getattr(parser, f"{S_AXIS}_{name}").eq(getattr(self, f"{S_AXIS}_{name}"))]
        m.d.comb += [reader.m_axis_tready.eq(self.m_axis_tready),
                     self.s_axis_tready.eq(parser.s_axis_tready),
                     self.error.eq(parser.error), parser.error_clear.eq(self.error_clear),
                     reader.start.eq(parser.read_start), reader.command.eq(parser.command),
                     parser.reader_active.eq(reader.active)]
        for n, port in enumerate(self._writes):
            m.d.comb += [port.addr.eq(parser.wr_addr), port.data.eq(parser.wr_data),
                         port.en.eq(parser.wr_en[n])]
        return m
