"""Which device family an elaboration is for (vendor primitives on ECP5, portable logic
elsewhere), and the one synthesis hint units give their registers (LOCAL).

`synth.SynthTarget` is the platform handed to `elaborate` when a netlist is built for a family;
simulation and Verilog for the benches pass no platform. Both forms of a unit have the same cycle
behaviour, so the Verilog the benches check and the netlist that is placed and routed agree.
"""

from __future__ import annotations

ECP5 = "ecp5"


def target_family(platform) -> str | None:
    """Device family the netlist is built for, None for simulation."""
    return getattr(platform, "family", None)


LOCAL = {"keep": 1}
"""Attributes of a register that must stay a flip-flop of its own although an equal one exists:
a PE's copy of a control flag (the flags of all PEs on one anti-diagonal are equal, and merged
they fanned out across the whole array, which set Fmax on ECP5), or a ready copied for a producer
placed far away. `keep` on the register's wire asks the flow to leave it (`niti_hw.rtl.synth`
turns it into a keep on the flip-flop)."""
