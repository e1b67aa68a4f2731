"""What every engine of the core shares: the sequencer's start and done handshake, the decoded
instruction it runs, and its bank ports."""

from __future__ import annotations

from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from niti_hw.params import HardwareParams
from niti_hw.rtl.banks import READ_PORTS, WRITE_PORTS, read_port_signature, write_port_signature
from niti_hw.rtl.instruction import tensor_layout


def engine_members(p: HardwareParams, **extra) -> dict:
    """`start` (one cycle) begins the instruction on `op`, which the sequencer holds until `done`
    (one cycle, after the engine's last bank write has been issued); `rd` and `wr` reach the banks
    while the sequencer has this engine selected."""
    return {
        "start": In(1),
        "done": Out(1),
        "op": In(tensor_layout()),
        "rd": Out(read_port_signature(p)).array(READ_PORTS),
        "wr": Out(write_port_signature(p)).array(WRITE_PORTS),
        **extra,
    }


class Engine(wiring.Component):
    """Base of the engines: `params` and the signature of `engine_members`."""

    def __init__(self, params: HardwareParams, **extra):
        self.params = params
        super().__init__(engine_members(params, **extra))
