"""Which device family an elaboration is for: vendor primitives on ECP5, portable logic elsewhere.

`synth.SynthTarget` is the platform handed to `elaborate` when a netlist is built for a family;
simulation and Verilog for the benches pass no platform. Both forms of a unit have the same cycle
behaviour, so the Verilog the benches check and the netlist that is placed and routed agree.
"""

from __future__ import annotations

ECP5 = "ecp5"


def target_family(platform) -> str | None:
    """Device family the netlist is built for, None for simulation."""
    return getattr(platform, "family", None)
