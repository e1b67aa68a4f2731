"""The core's stochastic-rounding LFSR lanes, held once for every rounder that draws from them.

Golden threads one `LfsrLanes` through a whole training step (every ROUND and the LOSS of a
stochastic kind draw from it in program order), so the core's rounders must not each keep their
own: the narrow engine's and the loss engine's stochastic `ShiftRound`s read these states and
ask for steps through an `lfsr_port_signature` port.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from niti_hw.golden import LFSR_TAPS, LfsrLanes
from niti_hw.params import HardwareParams

STATE = unsigned(32)


def lfsr_reset_states(params: HardwareParams) -> list[int]:
    """Reset state of each LFSR lane, from the golden model (the only definition of the seeding)."""
    return [int(s) for s in LfsrLanes(params.lfsr_seed, params.lfsr_lanes).states]


def lfsr_next(state):
    """One step of a Galois LFSR lane (taps `LFSR_TAPS`)."""
    return (state >> 1) ^ Mux(state[0], LFSR_TAPS, 0)


def lfsr_port_signature(p: HardwareParams) -> wiring.Signature:
    """A rounder's side: every lane's `states`; `step` bit j steps lane j at the next edge."""
    return wiring.Signature({"states": In(data.ArrayLayout(STATE, p.lfsr_lanes)),
                             "step": Out(p.lfsr_lanes)})


def lfsr_read_signature(p: HardwareParams) -> wiring.Signature:
    """The host's view of the lanes: the `state` of lane `index`, combinational, so that a host
    can check (or save with a checkpoint) where a stochastic run's rounding stands."""
    return wiring.Signature({"index": Out(range(p.lfsr_lanes)), "state": In(STATE)})


class LfsrBank(wiring.Component):
    """`lfsr_lanes` Galois LFSRs at golden's reset states. `port.step` bit j steps lane j at the
    next edge (the rounders it serves OR their steps: one runs at a time); `port.states` is the
    registers, so a rounder sees a step one cycle later, as it would its own."""

    def __init__(self, params: HardwareParams):
        self.params = params
        super().__init__({"port": In(lfsr_port_signature(params))})

    def elaborate(self, platform):
        m = Module()
        init = lfsr_reset_states(self.params)
        for j in range(self.params.lfsr_lanes):
            state = Signal(STATE, init=init[j], name=f"lfsr{j}")
            m.d.comb += self.port.states[j].eq(state)
            with m.If(self.port.step[j]):
                m.d.sync += state.eq(lfsr_next(state))
        return m
