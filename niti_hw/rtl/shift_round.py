"""R(x, k, mode) of SPEC for `lanes` int32 values per beat: shift, round, saturate to +-127."""

from __future__ import annotations

from amaranth.hdl import Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from niti_hw.golden import INT8_MAX, LFSR_TAPS
from niti_hw.params import ROUND_MODES, HardwareParams
from niti_hw.rtl.layouts import round_in_layout, round_out_layout

LATENCY = 4


def lfsr_reset_states(params: HardwareParams) -> list[int]:
    """Reset state of LFSR lane i: (seed + i) mod 2**32, a zero state replaced by 1 (SPEC)."""
    states = [(params.lfsr_seed + i) % 2**32 for i in range(params.lfsr_lanes)]
    return [s or 1 for s in states]


def low_mask(m: Module, k, name: str):
    """2**k - 1 as 32 bits for a shift k in 0..32."""
    mask = Signal(unsigned(32), name=name)
    m.d.comb += mask.eq(~(Const(0xFFFFFFFF, 32) << k)[:32])
    return mask


class ShiftRound(wiring.Component):
    """Shift-and-round to int8, `mode` fixed at elaboration ("nearest", "pseudo" or "stochastic").

    Input `i`: `lanes` int32 values, the tensor's shift `k` (0..32; 0 only saturates), `keep`
    (lanes that hold an element; only a tensor's final beat may be partial, keeping a prefix) and
    `last` (end of tensor). Output `o`: the int8 results, `keep` and `last` passed along.

    Stochastic mode holds `lfsr_lanes` Galois LFSRs (taps 0x80200003): element j of a tensor uses
    lane j % lfsr_lanes, which steps once per element rounded with k > 0, and r = low k bits of the
    new state. A tensor restarts at lane 0 after `last`; LFSR states persist across tensors.

    Throughput: one beat per cycle. Latency: 4 cycles from acceptance to a valid output
    (LFSR/register, magnitude and shifts, round decision, increment/sign/saturate). Backpressure on
    `o` freezes the pipeline.
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
        en = Signal()
        take = Signal()
        m.d.comb += [
            en.eq(~self.o.valid | self.o.ready),
            self.i.ready.eq(en),
            take.eq(self.i.valid & en),
        ]
        ip = self.i.p

        # Stage 0 -> 1: register the beat; in stochastic mode step this beat's LFSR lanes.
        s1_valid, s1_last = Signal(), Signal()
        s1_k = Signal.like(ip.k)
        s1_keep = Signal(L)
        s1_x = [Signal(signed(32), name=f"s1_x{n}") for n in range(L)]
        s1_r = [Signal(unsigned(32), name=f"s1_r{n}") for n in range(L)]
        with m.If(en):
            m.d.sync += [s1_valid.eq(take), s1_last.eq(ip.last), s1_k.eq(ip.k), s1_keep.eq(ip.keep)]
            m.d.sync += [s1_x[n].eq(ip.data[n]) for n in range(L)]
        if self.mode == "stochastic":
            self._lfsr_lanes(m, take, s1_r, en)

        # Stage 1 -> 2: magnitude, integer part q = |x| >> k, fraction f = |x| mod 2**k; nearest
        # uses (x >> (k-1) + 1) >> 1, which equals (x + 2**(k-1)) >> k.
        k1 = s1_k
        mask1 = low_mask(m, k1, "mask_k")
        s2_valid, s2_last = Signal(), Signal()
        s2_k = Signal.like(ip.k)
        s2_keep = Signal(L)
        s2 = []
        for n in range(L):
            x = s1_x[n]
            mag = Signal(unsigned(32), name=f"mag{n}")
            m.d.comb += mag.eq(Mux(x < 0, -x, x)[:32])
            lane = {
                "x": Signal(signed(32), name=f"s2_x{n}"),
                "neg": Signal(name=f"s2_neg{n}"),
                "q": Signal(unsigned(32), name=f"s2_q{n}"),
                "f": Signal(unsigned(32), name=f"s2_f{n}"),
                "r": Signal(unsigned(32), name=f"s2_r{n}"),
                "half": Signal(signed(33), name=f"s2_half{n}"),
            }
            with m.If(en):
                m.d.sync += [
                    lane["x"].eq(x), lane["neg"].eq(x < 0),
                    lane["q"].eq(mag >> k1), lane["f"].eq(mag & mask1),
                    lane["r"].eq(s1_r[n] & mask1),
                    lane["half"].eq(x >> (k1 - 1)[:5]),
                ]
            s2.append(lane)
        with m.If(en):
            m.d.sync += [s2_valid.eq(s1_valid), s2_last.eq(s1_last), s2_k.eq(s1_k), s2_keep.eq(s1_keep)]

        # Stage 2 -> 3: the round-up decision of the chosen mode.
        h = Signal(range(17))
        m.d.comb += h.eq(s2_k >> 1)  # (k-1)/2 for odd k, k/2 for even k
        mask_h = low_mask(m, h, "mask_h")
        s3_valid, s3_last = Signal(), Signal()
        s3_k = Signal.like(ip.k)
        s3_keep = Signal(L)
        s3 = []
        for n, lane in enumerate(s2):
            inc = Signal(name=f"inc{n}")
            if self.mode == "pseudo":
                f2 = Signal(unsigned(32), name=f"f2_{n}")
                m.d.comb += f2.eq(Mux(s2_k[0], lane["f"] >> 1, lane["f"]))
                m.d.comb += inc.eq((f2 >> h) > (f2 & mask_h))
            elif self.mode == "stochastic":
                m.d.comb += inc.eq(lane["f"] > lane["r"])
            out = {
                "x": Signal(signed(32), name=f"s3_x{n}"),
                "neg": Signal(name=f"s3_neg{n}"),
                "q": Signal(unsigned(32), name=f"s3_q{n}"),
                "inc": Signal(name=f"s3_inc{n}"),
                "near": Signal(signed(33), name=f"s3_near{n}"),
            }
            with m.If(en):
                m.d.sync += [
                    out["x"].eq(lane["x"]), out["neg"].eq(lane["neg"]), out["q"].eq(lane["q"]),
                    out["inc"].eq(inc), out["near"].eq((lane["half"] + 1) >> 1),
                ]
            s3.append(out)
        with m.If(en):
            m.d.sync += [s3_valid.eq(s2_valid), s3_last.eq(s2_last), s3_k.eq(s2_k), s3_keep.eq(s2_keep)]

        # Stage 3 -> out: apply the increment and the sign, saturate to +-127.
        with m.If(en):
            m.d.sync += [self.o.valid.eq(s3_valid), self.o.p.last.eq(s3_last), self.o.p.keep.eq(s3_keep)]
            for n, lane in enumerate(s3):
                if self.mode == "nearest":
                    rounded = Mux(s3_k == 0, lane["x"], lane["near"])
                    m.d.sync += self.o.p.data[n].eq(_saturate(m, rounded, f"sat{n}"))
                else:
                    mag = Signal(unsigned(33), name=f"qinc{n}")
                    m.d.comb += mag.eq(lane["q"] + lane["inc"])
                    small = Signal(unsigned(7), name=f"qsat{n}")
                    m.d.comb += small.eq(Mux(mag > INT8_MAX, INT8_MAX, mag[:7]))
                    rounded = Mux(lane["neg"], -small, small)
                    m.d.sync += self.o.p.data[n].eq(Mux(s3_k == 0, _saturate(m, lane["x"], f"sat{n}"), rounded))
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


def _saturate(m: Module, value, name: str):
    out = Signal(signed(8), name=name)
    m.d.comb += out.eq(Mux(value > INT8_MAX, INT8_MAX, Mux(value < -INT8_MAX, -INT8_MAX, value)))
    return out


def _or_all(values):
    result = values[0]
    for value in values[1:]:
        result = result | value
    return result
