"""The NITI core: a sequencer running a training step's program on on-chip banks, one engine at a
time, with no host between instructions (issue #20).

This slice runs every opcode of the ISA: GEMM, BITWIDTH, ROUND, RELU, RELU_BACKWARD, UPDATE, LOSS,
POOL, POOL_BACKWARD, COL2IM, the geometry instructions and END.
"""

from __future__ import annotations

import functools
import operator

from amaranth.hdl import Cat, Module, Value
from amaranth.lib import wiring
from amaranth.lib.wiring import In

from niti_hw.params import HardwareParams
from niti_hw.perf.timing import WRITE_PORT_LATENCY
from niti_hw.rtl.banks import Banks, read_port_signature, write_port_signature
from niti_hw.rtl.gather_engine import GatherEngine
from niti_hw.rtl.gemm_engine import GemmEngine
from niti_hw.rtl.lfsr_bank import LfsrBank, lfsr_read_signature
from niti_hw.rtl.loss_engine import LossEngine
from niti_hw.rtl.narrow_engine import NarrowEngine
from niti_hw.rtl.pool_engine import PoolEngine
from niti_hw.rtl.relu_engine import ReluEngine
from niti_hw.rtl.sequencer import ENGINES, Sequencer
from niti_hw.rtl.update_engine import INT8_BITS, UpdateEngine

if WRITE_PORT_LATENCY != 1:
    raise RuntimeError("rtl/core.py registers the selected engine's write port once: perf.timing's "
                       "WRITE_PORT_LATENCY must say 1")

PROGRAM_WORDS = 1024
"""Default instruction memory: 146 instructions (a small CNN's step is about 300 words)."""
HOST_MEMBERS = ("imem", "exp_wr", "exp_rd", "config", "start", "busy", "done", "error", "cause",
                "pc", "b", "conv", "pool")
"""The sequencer's ports the core passes to the host unchanged."""


class Core(wiring.Component):
    """`Banks`, `Sequencer` and the engines (`NarrowEngine`, `ReluEngine`, `UpdateEngine`,
    `LossEngine`, `GemmEngine`, `PoolEngine`, `GatherEngine`; the last three read the sequencer's
    geometry registers), the stochastic rounders of the narrow and loss engines drawing from one
    `LfsrBank` (golden's one set of lanes for a whole step). `weight_bits` (8..24) is the
    stored weights' width, the compiled program's: the weight bank's values and its UPDATEs.

    Host ports: the sequencer's (`imem`, `exp_wr`, `exp_rd`, `config`, `start`, `busy`, `done`,
    `error`, `cause`, `pc`, `b`, `conv`, `pool`; see `Sequencer`) and `host_rd`, `host_wr`, a
    bank read and write port (`Banks`' timing, a write `WRITE_PORT_LATENCY` later) that reach
    bank port 0 while the core is not busy, for loading a batch and weights and reading results
    (on a board `CoreTop`'s stream frames drive them); `lfsr_rd`, the state of any LFSR lane (`LfsrBank`).

    Cycles of a run: `niti_hw.perf.timing.program_cycles`.
    """

    def __init__(self, params: HardwareParams, program_words: int = PROGRAM_WORDS,
                 weight_bits: int = INT8_BITS):
        self.params, self.weight_bits = params, weight_bits
        self.banks = Banks(params, weight_bits)
        self.sequencer = Sequencer(params, program_words, weight_bits)
        self.lfsr = LfsrBank(params)
        self.engines = {"narrow": NarrowEngine(params), "relu": ReluEngine(params),
                        "update": UpdateEngine(params, weight_bits), "loss": LossEngine(params),
                        "gemm": GemmEngine(params), "pool": PoolEngine(params),
                        "gather": GatherEngine(params)}
        members = {name: self.sequencer.signature.members[name] for name in HOST_MEMBERS}
        super().__init__({**members, "host_rd": In(read_port_signature(params)),
                          "host_wr": In(write_port_signature(params)),
                          "lfsr_rd": In(lfsr_read_signature(params))})

    def elaborate(self, platform):
        m = Module()
        m.submodules.banks = banks = self.banks
        m.submodules.sequencer = seq = self.sequencer
        for name, engine in self.engines.items():
            m.submodules[name] = engine
            index = ENGINES.index(name)
            m.d.comb += [engine.start.eq(seq.launch[index]), engine.op.eq(seq.op),
                         seq.finished[index].eq(engine.done)]
            for geometry in ("conv", "pool"):  # the engines that walk a geometry register
                if geometry in engine.signature.members:
                    m.d.comb += getattr(engine, geometry).eq(getattr(seq, geometry))
        for name in HOST_MEMBERS:
            outer, inner = getattr(self, name), getattr(seq, name)
            member = self.signature.members[name]
            if member.is_signature:
                wiring.connect(m, wiring.flipped(outer), inner)
            elif member.flow == In:
                m.d.comb += inner.eq(outer)
            else:
                m.d.comb += outer.eq(inner)
        narrow = self.engines["narrow"]
        m.d.comb += [narrow.b_reg.eq(seq.b), narrow.config.eq(seq.config),
                     seq.b_result.eq(narrow.b), seq.k_result.eq(narrow.k)]
        loss = self.engines["loss"]
        m.d.comb += [loss.config.eq(seq.config), loss.s.eq(seq.a_exponent),
                     seq.loss_exponent.eq(loss.exponent)]
        m.submodules.lfsr = lfsr = self.lfsr
        m.d.comb += [narrow.lfsr.states.eq(lfsr.port.states),
                     loss.lfsr.states.eq(lfsr.port.states),
                     lfsr.port.step.eq(narrow.lfsr.step | loss.lfsr.step),  # one runs at a time
                     self.lfsr_rd.state.eq(lfsr.port.states[self.lfsr_rd.index])]
        engines = [self.engines[name] for name in ENGINES]
        for index, port in enumerate(banks.rd):
            host = self.host_rd if index == 0 else None
            _drive(m, port, [(seq.select[e], engine.rd[index]) for e, engine in enumerate(engines)],
                   host, seq.busy)
            for engine in engines:
                m.d.comb += engine.rd[index].data.eq(port.data)
            if host is not None:
                m.d.comb += host.data.eq(port.data)
        for index, port in enumerate(banks.wr):  # the selected port, registered (WRITE_PORT_LATENCY)
            request = write_port_signature(self.params).flip().create(path=(f"wr{index}",))
            _drive(m, request, [(seq.select[e], engine.wr[index])
                                for e, engine in enumerate(engines)],
                   self.host_wr if index == 0 else None, seq.busy)
            m.d.sync += [getattr(port, name).eq(getattr(request, name))
                         for name in port.signature.members]
        return m


def _drive(m: Module, port, engines, host, busy) -> None:
    """A bank port from the selected engine, or from the host port while the core is idle.

    An AND-OR of the sources (`select` is one-hot), not a comb If chain: Icarus never evaluates a
    comb process whose inputs keep their initial values, so a host port driving bank 0 from time
    0 would reach the banks as X."""
    names = [name for name, member in port.signature.members.items() if member.flow == In]
    idle = ~busy & ~Cat(*[selected for selected, _ in engines]).any()
    for name in names:
        target = Value.cast(getattr(port, name))
        sources = [(selected, getattr(source, name)) for selected, source in engines]
        if host is not None:
            sources.append((idle, getattr(host, name)))
        terms = [Value.cast(value) & selected.replicate(len(target))
                 for selected, value in sources]
        m.d.comb += target.eq(functools.reduce(operator.or_, terms))
