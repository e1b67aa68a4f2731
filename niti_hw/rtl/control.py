"""Run control behind the AXI4-Lite registers: start, busy, done, error, CYCLES and the cfg beat."""

from __future__ import annotations

from amaranth.hdl import Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from niti_hw.params import HardwareParams
from niti_hw.perf.timing import AXI_LITE_LATENCY, CONTROL_START_LATENCY
from niti_hw.registers import CFG_REGISTERS, WORD_BITS, port_name, register_map
from niti_hw.rtl.axi_lite import AxiLiteRegisters, axi_lite_members
from niti_hw.rtl.datapath import tensor_cfg_layout

if CONTROL_START_LATENCY != AXI_LITE_LATENCY + 1:
    raise RuntimeError("rtl/control.py registers busy and the cfg beat once after the CTRL.start "
                       "strobe: perf.timing's CONTROL_START_LATENCY must say so")


class ControlRegisters(wiring.Component):
    """The register map of `params` on an AXI4-Lite slave (`s_axil_*`, see `AxiLiteRegisters`),
    and the run control it drives.

    Wired today: CTRL.start (ignored while busy) raises `busy`, pulses `start` for one cycle, clears
    STATUS.done, STATUS.error and CYCLES, and offers the CFG registers as one beat on `cfg` (the
    tensor datapath's cfg layout), held until taken; busy and the cfg beat's valid rise
    `CONTROL_START_LATENCY` cycles after the write handshake. A `done` pulse while busy ends the
    run: busy falls, STATUS.done is set (sticky; write 1 to clear). `error` while busy sets
    STATUS.error (sticky; write 1 to clear). CYCLES counts the cycles in which busy is set,
    including the cycle of `done`, and saturates at 2**32 - 1. CTRL.soft_reset (wins over a start
    in the same write) clears busy, done, error, CYCLES and a cfg beat not yet taken, and pulses
    `soft_reset` for one cycle; the RW registers keep their values.

    Not wired yet: nothing sequences a run. `cfg` is meant for the tensor `Datapath`'s cfg input
    (or a cfg-beat mux in front of it), `done` and `error` for a sequencer's end-of-run and the
    datapath's `status.refused`; `soft_reset` resets nothing but this block. Operands, weights and
    batches travel on streams, not through these registers.
    """

    def __init__(self, params: HardwareParams):
        self.params = params
        self.regmap = register_map(params)
        self._regs = AxiLiteRegisters(self.regmap)
        super().__init__({
            **axi_lite_members(self.regmap.addr_bits),
            "cfg": Out(stream.Signature(tensor_cfg_layout())),
            "done": In(1),
            "error": In(1),
            "busy": Out(1),
            "start": Out(1),
            "soft_reset": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.regs = regs = self._regs
        for name in axi_lite_members(self.regmap.addr_bits):
            outer, inner = getattr(self, name), getattr(regs, name)
            if self.signature.members[name].flow == In:
                m.d.comb += inner.eq(outer)
            else:
                m.d.comb += outer.eq(inner)

        busy, done, error = self.busy, Signal(), Signal()
        cycles = Signal(WORD_BITS)
        m.d.comb += [
            regs.status_busy.eq(busy), regs.status_done.eq(done), regs.status_error.eq(error),
            regs.cycles_count.eq(cycles),
            self.soft_reset.eq(regs.ctrl_soft_reset),
            self.start.eq(regs.ctrl_start & ~busy & ~regs.ctrl_soft_reset),
        ]
        # The strobe comes with BVALID (AXI_LITE_LATENCY); busy and cfg are registered from it.

        with m.If(self.cfg.ready):
            m.d.sync += self.cfg.valid.eq(0)
        with m.If(busy):
            with m.If(cycles != (1 << WORD_BITS) - 1):
                m.d.sync += cycles.eq(cycles + 1)
            with m.If(self.error):
                m.d.sync += error.eq(1)
            with m.If(self.done):
                m.d.sync += [busy.eq(0), done.eq(1)]
        with m.If(regs.status_done_clear & ~(busy & self.done)):  # a new done wins over a clear
            m.d.sync += done.eq(0)
        with m.If(regs.status_error_clear & ~(busy & self.error)):
            m.d.sync += error.eq(0)
        with m.If(self.start):
            m.d.sync += [busy.eq(1), done.eq(0), error.eq(0), cycles.eq(0), self.cfg.valid.eq(1)]
            for reg_name, fields in CFG_REGISTERS:
                for field in fields:
                    reg = self.regmap[reg_name]
                    stored = getattr(regs, port_name(reg, reg.field(field)))
                    m.d.sync += self.cfg.p[field].eq(stored)
        with m.If(regs.ctrl_soft_reset):
            m.d.sync += [busy.eq(0), done.eq(0), error.eq(0), cycles.eq(0), self.cfg.valid.eq(0)]
        return m
