"""Performance model of NITI training: timing, tiling, lowering, cost and energy (numpy/pandas only).

The one home of cycle formulas; `niti_hw.rtl` and the benches import from here, never the reverse,
so estimates run without Amaranth installed.
"""
