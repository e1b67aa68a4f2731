"""The per-class terms t_i of SPEC's integer cross-entropy gradient (golden `loss`), one class per
cycle: the base-2 branch's 2**xh - 1 and the Taylor branch's 40-bit-cut polynomial, for any s.

Taylor, with u = -s >= 7: T_i = 2**(1 + 2u) + a_i 2**(1 + u) + a_i**2 grows with a_i, so the row's
largest logit sets the cut: T_max has 2 + 2u - n bits (n = 1 when that logit is negative) once
u >= 20, the cut is ex = max(0, 2 + 2u - n - 40), and since 2**(1 + 2u) and a_i 2**(1 + u) are
multiples of 2**ex whenever ex <= 1 + u,
    t_i = T_i >> ex = 2**P + floor(a_i 2**L) + (a_i**2 >> ex),  P = 1 + 2u - ex,  L = 1 + u - ex
(for L < 0, ex > 1 + u and a_i**2 < 2**(1 + u) leave floor(a_i 2**L) alone). Past u = 48, L is
below -8 and a_i**2 >> ex is 0, so u is capped there and every s is exact with 6-bit shifts.

Base 2, x_i = floor(47274 a_i / 2**(15 - s)) (shift 0 for s >= 15: the gaps are then >= 47274
either way): 47274 a_i is 2 (92 a_i 2**8 + 85 a_i), two int8 products, and xh_i = x_i - (x_max - 10)
clipped to 0..10, so the row's largest logit, sent first (`ref`), gives x_max.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from niti_hw.golden.loss import (BASE2_WINDOW, LOG2E_FRACTION_BITS, LOG2E_Q15, TAYLOR_MAX_BITS,
                                 TAYLOR_MAX_EXPONENT)
from niti_hw.perf.timing import LOSS_TERMS_LATENCY
from niti_hw.rtl.layouts import INT8
from niti_hw.rtl.multiplier import Int8Multiplier

EXPONENT = signed(16)
"""The logits' exponent s as the cfg beat carries it; every value of it is exact."""
TERM = unsigned(TAYLOR_MAX_BITS)
"""t_i < 2**40 in both branches."""

U_CAP = TAYLOR_MAX_BITS + 8  # from here on 2**L is below 2**-8 and a_i**2 >> ex is 0
A_SHIFT = TAYLOR_MAX_BITS // 2  # the largest L (u = 19): floor(a 2**L) = (a << 20) >> (20 - L)
SQUARE_BITS = 14  # a**2 <= 127**2 < 2**14
MAX_BASE2_SHIFT = LOG2E_FRACTION_BITS - TAYLOR_MAX_EXPONENT - 1  # 15 - s for s = -6
_HALF_HI, _HALF_LO = divmod(LOG2E_Q15 // 2, 256)
assert LOG2E_Q15 % 2 == 0 and max(_HALF_HI, _HALF_LO) <= 127  # two int8 x int8 products


class LossTerms(wiring.Component):
    """t_i of each logit, one per cycle, `LOSS_TERMS_LATENCY` cycles after it is offered.

    `s` must hold still from three cycles before a row's first item until its last term is out.
    Each row sends its largest logit first with `ref` set (it comes out with `t_ref`, its term to
    be dropped), then its logits, `last` on the final one (out with `t_last`); `t_term` marks a
    logit's term (valid, not the reference), a flip-flop of its own. Stages: three int8
    products (a**2 and the two halves of 47274 a, `Int8Multiplier`s in LUTs: the core's array
    needs the MULT18X18Ds); their sum; coarse shifts (by 8s); fine shifts; the base-2 clip's
    compares and the Taylor 2**P + a 2**L; the clip to 2**xh - 1 or the square's addition.
    Never stalls.
    """

    def __init__(self):
        super().__init__({
            "s": In(EXPONENT),
            "a": In(INT8),
            "valid": In(1),
            "ref": In(1),
            "last": In(1),
            "t": Out(TERM),
            "t_valid": Out(1),
            "t_ref": Out(1),
            "t_last": Out(1),
            "t_term": Out(1),
        })

    def elaborate(self, platform):
        m = Module()

        def reg(value, name, shape=None, reset=False):
            out = Signal(shape if shape is not None else value.shape(), name=name,
                         reset_less=not reset)
            m.d.sync += out.eq(value)
            return out

        def delay(value, n, name, reset=False):
            for stage in range(n):
                value = reg(value, f"{name}_d{stage}", reset=reset)
            return value

        # Per tensor, from s (three cycles: compares, the cut for n = 0 and 1, P, L and ex).
        s = self.s
        base2 = reg(s > TAYLOR_MAX_EXPONENT, "base2")
        r = reg(Mux(s >= LOG2E_FRACTION_BITS, 0, LOG2E_FRACTION_BITS - s), "base2_shift",
                unsigned(5))
        u = reg(Mux(s < -U_CAP, U_CAP, -s), "taylor_u", unsigned(6))
        cuts = []  # (P, 20 - L, the square's shift) for n = 0 and 1
        for n in (0, 1):
            over = 2 * u + 2 - n - TAYLOR_MAX_BITS
            cut = reg(Mux(over > 0, over, 0), f"cut{n}", unsigned(7))
            cuts.append((reg(1 + 2 * u - cut, f"p{n}", unsigned(6)),
                         reg(A_SHIFT - 1 - u + cut, f"a_shift{n}", unsigned(5)),
                         reg(Mux(cut > SQUARE_BITS, SQUARE_BITS, cut), f"sq_shift{n}",
                             unsigned(4))))

        # Per row: n = the `ref` item (the largest logit) is negative, registered, then the
        # row's 2**P and shifts (ready for the row's first logit, a stage behind).
        negative = Signal(name="largest_negative")
        with m.If(self.valid & self.ref):
            m.d.sync += negative.eq(self.a < 0)
        power = reg(Const(1, 1) << Mux(negative, cuts[1][0], cuts[0][0]), "power",
                    unsigned(TAYLOR_MAX_BITS + 1))
        a_shift = reg(Mux(negative, cuts[1][1], cuts[0][1]), "a_shift")
        sq_shift = reg(Mux(negative, cuts[1][2], cuts[0][2]), "sq_shift")

        # Stages 1-3: the products (operand, product and transport registers).
        products = []
        for name, b in (("square", self.a), ("hi", _HALF_HI), ("lo", _HALF_LO)):
            m.submodules[f"mul_{name}"] = mul = Int8Multiplier(f"mul_{name}", fabric=True)
            m.d.comb += [mul.a.eq(self.a), mul.b.eq(b), mul.en.eq(1)]
            products.append(mul.p)
        square, hi, lo = products
        latency = Int8Multiplier.LATENCY
        a3 = delay(self.a, latency, "a")

        def flags_after(flags, n, stage):  # valid, ref and last beside the data
            return tuple(delay(flag, n, f"{name}{stage}", reset=True)
                         for flag, name in zip(flags, ("valid", "ref", "last")))

        flags = flags_after((self.valid, self.ref, self.last), latency, "")
        # Stage 4: 47274 a; a << 20 for the Taylor term.
        x4 = reg((hi << 9) + (lo << 1), "x4", signed(24))
        sq4 = reg(square[:SQUARE_BITS], "sq4", unsigned(SQUARE_BITS))
        a4 = reg(a3 << A_SHIFT, "a4", signed(8 + A_SHIFT))
        flags = flags_after(flags, 1, "4")
        # Stages 5 and 6: coarse shifts by multiples of 8 (4 for the square), then fine shifts.
        x5 = reg(x4 >> (r & 0b11000), "x5", signed(24))
        a5 = reg(a4 >> (a_shift & 0b11000), "a5", signed(8 + A_SHIFT))
        sq5 = reg(sq4 >> (sq_shift & 0b1100), "sq5", unsigned(SQUARE_BITS))
        x6 = reg(x5 >> r[:3], "x6", signed(24))
        a6 = reg(a5 >> a_shift[:3], "a6", signed(8 + A_SHIFT))
        sq6 = reg(sq5 >> sq_shift[:2], "sq6", unsigned(SQUARE_BITS))
        flags = flags_after(flags, 2, "6")
        top = Signal(signed(24), name="x_max", reset_less=True)
        floor = Signal(signed(25), name="x_floor", reset_less=True)  # x_max - 10
        with m.If(flags[0] & flags[1]):
            m.d.sync += [top.eq(x6), floor.eq(x6 - BASE2_WINDOW)]
        # Stage 7: xh = x - floor at or above 10, at or below 0, its low bits; 2**P + a 2**L.
        over = reg(x6 >= top, "xh_over")
        under = reg(x6 <= floor, "xh_under")
        low = reg((x6 - floor)[:4], "xh_low", unsigned(4))
        sum7 = reg(power + a6, "sum7", signed(TAYLOR_MAX_BITS + 2))
        sq7 = reg(sq6, "sq7")
        flags = flags_after(flags, 1, "7")
        # Stage 8: 2**xh - 1 (bit k set when xh > k) or the Taylor term.
        ramp = Cat(*[low > k for k in range(BASE2_WINDOW)])
        clipped = Mux(over, (1 << BASE2_WINDOW) - 1, Mux(under, 0, ramp))
        t = reg(Mux(base2, clipped, sum7 + sq7), "t8", TERM)
        term = reg(flags[0] & ~flags[1], "term8", reset=True)
        valid, ref, last = flags_after(flags, 1, "8")
        assert latency + 5 == LOSS_TERMS_LATENCY
        m.d.comb += [self.t.eq(t), self.t_valid.eq(valid), self.t_ref.eq(ref),
                     self.t_last.eq(last), self.t_term.eq(term)]
        return m
