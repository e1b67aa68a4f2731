"""niti-hw: a hardware co-design kit for NITI integer-only neural network training.

`niti_hw.golden` is the one definition of the integer arithmetic (see SPEC.md); every other part
(RTL, datapath model, GPU path) is an adapter checked against it bit for bit.
"""

__version__ = "0.1.0"
