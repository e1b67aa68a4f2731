"""R(x, k, mode) of SPEC for `lanes` int32 values per beat: shift, round, saturate to +-127."""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from niti_hw.golden import INT8_MAX, LFSR_TAPS, LfsrLanes
from niti_hw.params import ROUND_MODES, HardwareParams
from niti_hw.perf.timing import ROUND_LATENCY as LATENCY
from niti_hw.rtl.layouts import round_in_layout, round_out_layout
from niti_hw.rtl.output_buffer import OutputBuffer

# Pseudo rounding compares (f2 >> h) with f2 mod 2**h where f2 < 2**(2h) and h <= 16, so both sides
# fit in 16 bits.
PSEUDO_BITS = 16


def lfsr_reset_states(params: HardwareParams) -> list[int]:
    """Reset state of each LFSR lane, from the golden model (the only definition of the seeding)."""
    return [int(s) for s in LfsrLanes(params.lfsr_seed, params.lfsr_lanes).states]


def low_mask(k, width: int = 32):
    """2**k - 1 in `width` bits for k in 0..width: bit i is set when k > i (one LUT level per bit)."""
    return Cat(*[k > i for i in range(width)])


class _Stages:
    """Registers of one pipeline, all advancing on the shared enable."""

    def __init__(self, m: Module, en):
        self.m, self.en = m, en

    def reg(self, value, name: str, shape=None):
        out = Signal(shape if shape is not None else value.shape(), name=name)
        with self.m.If(self.en):
            self.m.d.sync += out.eq(value)
        return out

    def delay(self, value, n: int, name: str):
        for stage in range(n):
            value = self.reg(value, f"{name}_d{stage}")
        return value


class ShiftRound(wiring.Component):
    """Shift-and-round to int8, `mode` fixed at elaboration ("nearest", "pseudo" or "stochastic").

    Input `i`: `lanes` int32 values, the tensor's shift `k` (0..32; 0 only saturates), `keep`
    (lanes that hold an element; only a tensor's final beat may be partial, keeping a prefix) and
    `last` (end of tensor). Output `o`: the int8 results, `keep`, `last` and `k` passed along.

    Stochastic mode holds `lfsr_lanes` Galois LFSRs (taps 0x80200003): element j of a tensor uses
    lane j % lfsr_lanes, which steps once per element rounded with k > 0, and r = low k bits of the
    new state. A tensor restarts at lane 0 after `last`; LFSR states persist across tensors.

    Throughput: one beat per cycle. Latency: `LATENCY` (9) cycles from acceptance to a valid output
    in every mode. Each stage holds at most one carry chain or three barrel-shifter levels, so the
    unit closes timing near the array's clock: input/LFSR register; magnitude and masks; coarse
    shift (by 8s) and fraction; fine shift and the mode's first step; pseudo's coarse shift by h /
    nearest's increment; pseudo's fine shift / nearest's clamp; pseudo's compare; increment and
    clamp of |q|; sign and the k = 0 select (written into an `OutputBuffer`). Backpressure on `o`
    stalls the pipeline one cycle later, through the buffer's registered clock enable.
    """

    def __init__(self, params: HardwareParams, mode: str | None = None):
        mode = params.round_mode if mode is None else mode
        if mode not in ROUND_MODES:
            raise ValueError(f"mode must be one of {ROUND_MODES}; got {mode!r}")
        self.params = params
        self.mode = mode
        super().__init__({
            "i": In(stream.Signature(round_in_layout(params))),
            "o": Out(stream.Signature(round_out_layout(params))),
        })

    def elaborate(self, platform):
        p = self.params
        L = p.lanes
        m = Module()
        out = OutputBuffer(m, self.o)
        en = out.en
        take = Signal()
        m.d.comb += [
            self.i.ready.eq(en),
            take.eq(self.i.valid & en),
        ]
        ip = self.i.p
        st = _Stages(m, en)

        # Stage 1: register the beat and what later stages need of k; step the LFSR lanes.
        s1_k = st.reg(ip.k, "s1_k")
        s1_km1 = st.reg((ip.k - 1)[:5], "s1_km1")  # nearest shifts by k - 1 (k >= 1)
        s1_x = [st.reg(ip.data[n], f"s1_x{n}") for n in range(L)]
        s1_r = [Signal(unsigned(32), name=f"s1_r{n}") for n in range(L)]
        if self.mode == "stochastic":
            self._lfsr_lanes(m, take, s1_r, en)
        # Stage 2: magnitude, masks 2**k - 1 and 2**h - 1 (h = k >> 1), k = 0 saturation of x.
        s2_k = st.reg(s1_k, "s2_k")
        s2_mask = st.reg(low_mask(s1_k), "s2_mask")
        s2_h = st.reg(s1_k >> 1, "s2_h", unsigned(5))
        mask_h = st.reg(low_mask(s1_k >> 1, PSEUDO_BITS), "s2_mask_h")
        s2_km1 = st.reg(s1_km1, "s2_km1")
        s2_kz = st.reg(s1_k == 0, "s2_kz")
        kz = st.delay(s2_kz, LATENCY - 3, "kz")  # used by the output register
        lanes = []
        for n in range(L):
            x = s1_x[n]
            lane = {"mag": st.reg(Mux(x < 0, -x, x)[:32], f"s2_mag{n}", unsigned(32)),
                    "xsat": st.reg(_clamp(x), f"s2_xsat{n}", signed(8))}
            lane["neg"] = st.delay(st.reg(x < 0, f"s2_neg{n}"), LATENCY - 3, f"neg{n}")
            lane["xsat"] = st.delay(lane["xsat"], LATENCY - 3, f"xsat{n}")
            if self.mode == "stochastic":
                lane["r"] = st.reg(s1_r[n], f"s2_r{n}")
            if self.mode == "nearest":
                lane["x"] = st.reg(x, f"s2_x{n}")
            lanes.append(lane)

        # Stage 3: coarse shift (multiples of 8) of |x| by k, fraction f = |x| mod 2**k.
        s3_k = st.reg(s2_k[:3], "s3_k")
        for n, lane in enumerate(lanes):
            lane["qc"] = st.reg(lane["mag"] >> Cat(Const(0, 3), s2_k[3:6]), f"s3_qc{n}",
                                unsigned(32))
            lane["f"] = st.reg(lane["mag"] & s2_mask, f"s3_f{n}")
            if self.mode == "stochastic":
                lane["r"] = st.reg(lane["r"] & s2_mask, f"s3_r{n}")
            if self.mode == "nearest":
                lane["hc"] = st.reg(lane["x"] >> Cat(Const(0, 3), s2_km1[3:5]), f"s3_hc{n}",
                                    signed(32))
        s3_km1 = st.reg(s2_km1[:3], "s3_km1")
        s3_h = st.reg(s2_h, "s3_h")
        s3_odd = st.reg(s2_k[0], "s3_odd")
        s3_mask_h = st.reg(mask_h, "s3_mask_h")

        # Stage 4: fine shift to q = |x| >> k; the mode's first step on the fraction.
        s4_h = st.reg(s3_h, "s4_h")
        s4_mask_h = st.reg(s3_mask_h, "s4_mask_h")
        for n, lane in enumerate(lanes):
            lane["q"] = st.reg(lane["qc"] >> s3_k, f"s4_q{n}", unsigned(32))
            if self.mode == "pseudo":  # f2 = f >> 1 for odd k, so that f2 < 2**(2h)
                lane["f2"] = st.reg(Mux(s3_odd, lane["f"] >> 1, lane["f"]), f"s4_f2{n}",
                                    unsigned(32))
            elif self.mode == "stochastic":
                lane["inc"] = st.reg(lane["f"] > lane["r"], f"s4_inc{n}")
            else:  # fine shift to x >> (k-1)
                lane["half"] = st.reg(lane["hc"] >> s3_km1, f"s4_half{n}", signed(32))

        # Stage 5: |q| >= 128 flag; pseudo: coarse shift of f2 by h and f2 mod 2**h; nearest: the
        # increment, as (x >> (k-1) + 1) >> 1 equals (x + 2**(k-1)) >> k.
        s5_h = st.reg(s4_h[:3], "s5_h")
        for n, lane in enumerate(lanes):
            lane["big"] = st.reg(lane["q"][7:].any(), f"s5_big{n}")
            lane["q7"] = st.reg(lane["q"][:7], f"s5_q7_{n}")
            if self.mode == "pseudo":
                lane["fc"] = st.reg((lane["f2"] >> Cat(Const(0, 3), s4_h[3:5]))[:PSEUDO_BITS + 8],
                                    f"s5_fc{n}", unsigned(PSEUDO_BITS + 8))
                lane["lo"] = st.reg(lane["f2"][:PSEUDO_BITS] & s4_mask_h, f"s5_lo{n}")
            elif self.mode == "stochastic":
                lane["inc"] = st.reg(lane["inc"], f"s5_inc{n}")
            else:
                lane["near"] = st.reg((lane["half"] + 1) >> 1, f"s5_near{n}", signed(33))

        # Stage 6: pseudo's fine shift, nearest's clamp; stage 7: pseudo's decision
        # (f2 >> h) > f2 mod 2**h.
        for n, lane in enumerate(lanes):
            lane["big"] = st.delay(lane["big"], 2, f"big{n}")
            lane["q7"] = st.delay(lane["q7"], 2, f"q7_{n}")
            if self.mode == "pseudo":
                hi = st.reg((lane["fc"] >> s5_h)[:PSEUDO_BITS], f"s6_hi{n}", unsigned(PSEUDO_BITS))
                lo = st.reg(lane["lo"], f"s6_lo{n}")
                lane["inc"] = st.reg(hi > lo, f"s7_inc{n}")
            elif self.mode == "stochastic":
                lane["inc"] = st.delay(lane["inc"], 2, f"inc{n}")
            else:
                lane["near"] = st.delay(st.reg(_clamp(lane["near"]), f"s6_near{n}", signed(8)), 1,
                                        f"near{n}")

        # Stage 8: |result| = min(q + inc, 127); nearest passes its clamped value on.
        for n, lane in enumerate(lanes):
            if self.mode == "nearest":
                lane["small"] = st.reg(lane["near"], f"s8_near{n}")
            else:
                top = lane["big"] | ((lane["q7"] == INT8_MAX) & lane["inc"])
                lane["small"] = st.reg(Mux(top, INT8_MAX, lane["q7"] + lane["inc"]),
                                       f"s8_small{n}", unsigned(7))

        # Stage 9 (the output buffer's slot): apply the sign; k = 0 only saturates x.
        valid = st.delay(take, LATENCY - 1, "valid")
        last = st.delay(ip.last, LATENCY - 1, "last")
        keep = st.delay(ip.keep, LATENCY - 1, "keep")
        k_out = st.delay(s2_k, LATENCY - 3, "k_out")
        m.d.comb += [out.push.eq(en & valid), out.data.last.eq(last), out.data.keep.eq(keep),
                     out.data.k.eq(k_out)]
        for n, lane in enumerate(lanes):
            if self.mode == "nearest":
                rounded = lane["small"]
            else:
                rounded = Mux(lane["neg"], -lane["small"], lane["small"])
            m.d.comb += out.data.data[n].eq(Mux(kz, lane["xsat"], rounded))
        return m

    def _lfsr_lanes(self, m: Module, take, s1_r, en) -> None:
        """Lane group g serves this beat: position n uses LFSR g*lanes + n; g restarts after `last`."""
        p = self.params
        L, G = p.lanes, p.lfsr_groups
        ip = self.i.p
        init = lfsr_reset_states(p)
        states = [Signal(unsigned(32), init=init[j], name=f"lfsr{j}") for j in range(p.lfsr_lanes)]
        group = Signal(range(G), init=0)
        if G > 1:
            with m.If(take):
                m.d.sync += group.eq(Mux(ip.last | (group == G - 1), 0, group + 1))
        step = take & (ip.k != 0)
        for n in range(L):
            current = Signal(unsigned(32), name=f"lfsr_cur{n}")
            nxt = Signal(unsigned(32), name=f"lfsr_next{n}")
            # AND-OR select rather than a comb Switch: a comb process whose inputs sit at their
            # initial values is never evaluated by Icarus at time 0 and would read as X.
            picks = [states[g * L + n] & (group == g).replicate(32) for g in range(G)]
            m.d.comb += current.eq(_or_all(picks))
            m.d.comb += nxt.eq((current >> 1) ^ Mux(current[0], LFSR_TAPS, 0))
            with m.If(en):
                m.d.sync += s1_r[n].eq(nxt)
            with m.If(step & ip.keep[n]):
                with m.Switch(group):
                    for g in range(G):
                        with m.Case(g):
                            m.d.sync += states[g * L + n].eq(nxt)


def _clamp(value):
    """Signed `value` clamped to +-127 (SPEC saturation), from OR/AND trees rather than two
    full-width compares (two carry chains in a row were the unit's critical path)."""
    sign, upper = value[-1], value[7:]
    over = ~sign & upper.any()  # >= 128
    under = sign & ~(upper.all() & value[:7].any())  # <= -128
    return Mux(over, INT8_MAX, Mux(under, -INT8_MAX, value[:8].as_signed()))


def _or_all(values):
    result = values[0]
    for value in values[1:]:
        result = result | value
    return result
