"""Amaranth RTL of the NITI datapath: systolic array, bitwidth detector, rounding unit, top."""
