"""Registered int8 x int8 -> int16 multiplier: fabric `*` for simulation, MULT18X18D on ECP5.

Both forms have the same cycle behaviour, so the generated Verilog the benches simulate and the
netlist that is placed and routed agree: operands are registered when `en` is high, the product is
registered on the next enabled cycle and copied to a fabric register on the one after (latency 3
enabled cycles, throughput one product per cycle). On ECP5 the first two registers sit inside the
DSP block (REG_INPUTA/B and REG_OUTPUT): the DSP's combinational multiplier alone costs ~4 ns, which
capped the array near 134 MHz. The third lets the placer bridge the distance from the fixed DSP
sites to the accumulators (a direct DSP-to-adder route measured ~5 ns on an 8x8 array).
"""

from __future__ import annotations

from amaranth.hdl import ClockSignal, Const, Elaboratable, Instance, Module, Signal, signed

from niti_hw.perf.timing import MULTIPLIER_LATENCY
from niti_hw.rtl.shift_add import signed_shifted_sum
from niti_hw.rtl.target import ECP5, target_family

DSP_WIDTH = 18


class Int8Multiplier(Elaboratable):
    """p <= a * b: operand register, product register, transport register, all gated by `en`."""

    LATENCY = MULTIPLIER_LATENCY

    def __init__(self, name: str = "mul", fabric: bool = False):
        self.a = Signal(signed(8), name=f"{name}_a_in")
        self.b = Signal(signed(8), name=f"{name}_b_in")
        self.en = Signal(name=f"{name}_en")
        self.p = Signal(signed(16), name=f"{name}_p", reset_less=True)  # data: no reset net
        self._name = name
        self.fabric = fabric  # shift and add in LUTs on every target: no MULT18X18D

    def elaborate(self, platform):
        m = Module()
        product = Signal(signed(16), name=f"{self._name}_prod", reset_less=True)
        if target_family(platform) == ECP5 and not self.fabric:
            self._ecp5(m, product)
        else:
            a_r = Signal(signed(8), name=f"{self._name}_a_r", reset_less=True)
            b_r = Signal(signed(8), name=f"{self._name}_b_r", reset_less=True)
            value = signed_shifted_sum(a_r, b_r) if self.fabric else a_r * b_r
            with m.If(self.en):
                m.d.sync += [a_r.eq(self.a), b_r.eq(self.b), product.eq(value)]
        with m.If(self.en):
            m.d.sync += self.p.eq(product)
        return m

    def _ecp5(self, m: Module, out) -> None:
        a = self.a.as_signed()
        b = self.b.as_signed()
        ports = {}
        for n in range(DSP_WIDTH):
            ports[f"i_A{n}"] = a[min(n, 7)]  # sign-extended to the DSP's 18 bits
            ports[f"i_B{n}"] = b[min(n, 7)]
            ports[f"i_C{n}"] = Const(0, 1)
        product = Signal(36, name=f"{self._name}_dsp_p")
        for n in range(2 * DSP_WIDTH):
            ports[f"o_P{n}"] = product[n]
        regs = {f"p_REG_{reg}_{what}": value
                for reg in ("INPUTA", "INPUTB", "OUTPUT")
                for what, value in (("CLK", "CLK0"), ("CE", "CE0"), ("RST", "RST0"))}
        m.submodules += Instance(
            "MULT18X18D",
            p_REG_INPUTC_CLK="NONE", p_REG_PIPELINE_CLK="NONE", p_GSR="DISABLED",
            p_RESETMODE="SYNC", p_SOURCEB_MODE="B_SHIFT", p_MULT_BYPASS="DISABLED",
            p_CLK0_DIV="ENABLED", p_HIGHSPEED_CLK="NONE", p_CAS_MATCH_REG="FALSE",
            **regs, **ports,
            i_SIGNEDA=Const(1, 1), i_SIGNEDB=Const(1, 1), i_SOURCEA=Const(0, 1),
            i_SOURCEB=Const(0, 1),
            i_CLK0=ClockSignal(), i_CE0=self.en, i_RST0=Const(0, 1),
            **{f"i_{pin}": Const(0, 1) for pin in ("CLK1", "CLK2", "CLK3", "CE1", "CE2", "CE3",
                                                    "RST1", "RST2", "RST3")},
        )
        m.d.comb += out.eq(product[:16])
