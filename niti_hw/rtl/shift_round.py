"""R(x, k, mode) of SPEC for `lanes` int32 values per beat: shift, round, saturate to +-127."""

from __future__ import annotations

from types import SimpleNamespace

from amaranth.hdl import Cat, Const, Module, Mux, Signal, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from niti_hw.golden import INT8_MAX, MAX_SHIFT
from niti_hw.params import ROUND_MODES, HardwareParams
from niti_hw.perf.timing import ROUND_LATENCY as LATENCY
from niti_hw.rtl.instruction import MODE_BITS
from niti_hw.rtl.layouts import round_in_layout, round_out_layout
from niti_hw.rtl.lfsr_bank import lfsr_next, lfsr_port_signature, lfsr_reset_states
from niti_hw.rtl.output_buffer import OutputBuffer
from niti_hw.rtl.saturate import clamp, out_of_range

# The stage whose register holds each mode's round-up decision (the mode-specific part).
DECISION_STAGE = 7
# Pseudo rounding compares (f2 >> h) with f2 mod 2**h where f2 < 2**(2h) and h <= 16, so both sides
# fit in 16 bits.
PSEUDO_BITS = 16


def low_mask(k, width: int = 32):
    """2**k - 1 in `width` bits for k in 0..width: bit i is set when k > i (one LUT level per bit)."""
    return Cat(*[k > i for i in range(width)])


class _Stages:
    """Registers of one pipeline, all advancing on the shared enable. They hold data, read only
    beside a valid flag, so they have no reset (a reset net to thousands of flip-flops costs
    routing); the valid flags ask for one with `reset=True`."""

    def __init__(self, m: Module, en):
        self.m, self.en = m, en

    def reg(self, value, name: str, shape=None, reset: bool = False):
        out = Signal(shape if shape is not None else value.shape(), name=name, reset_less=not reset)
        with self.m.If(self.en):
            self.m.d.sync += out.eq(value)
        return out

    def delay(self, value, n: int, name: str, reset: bool = False):
        for stage in range(n):
            value = self.reg(value, f"{name}_d{stage}", reset=reset)
        return value


class ShiftRound(wiring.Component):
    """Shift-and-round to int8, `mode` fixed at elaboration ("nearest", "pseudo" or "stochastic").

    Input `i`: `lanes` int32 values, the tensor's shift `k` (0..32; 0 only saturates), `keep`
    (lanes that hold an element; only a tensor's final beat may be partial, keeping a prefix) and
    `last` (end of tensor). Output `o`: the int8 results, `keep`, `last` and `k` passed along.

    A shift above 32 is refused, as the golden model refuses it: the beat comes out with zero data
    and `keep` = 0, no LFSR steps, and `bad_shift` stays high until reset.

    Every mode is one magnitude pipeline: |x| >> k and f = |x| mod 2**k, then a mode-specific
    round-up decision on f (`_RoundHalfUp`, `_PseudoRoundUp`, `_StochasticRoundUp`), then
    min(q + up, 127) with the sign of x. (Round half up of x is, on the magnitude, up when
    f >= 2**(k-1) for x >= 0 and when f > 2**(k-1) for x < 0.)

    Stochastic mode holds `lfsr_lanes` Galois LFSRs (taps 0x80200003): element j of a tensor uses
    lane j % lfsr_lanes, which steps once per element rounded with k > 0, and r = low k bits of the
    new state. A tensor restarts at lane 0 after `last`; LFSR states persist across tensors. With
    `shared_lfsr` the LFSRs are not its own: it reads their states and asks for its steps on the
    `lfsr` port (an `LfsrBank`'s, shared with other rounders), in the same cycles.

    With `runtime_mode` (the core's) one unit rounds in every mode: `mode_code` (a
    `ROUND_MODES` index, held while a tensor's beats are in the unit) picks the round-up
    decision of stage 7; the magnitude pipeline, the shifts and the clamps are shared, and the
    LFSR lanes step only for stochastic beats.

    Throughput: one beat per cycle. Latency: `LATENCY` (9) cycles from acceptance to a valid output
    in every mode. Each stage holds at most one carry chain or three barrel-shifter levels, so the
    unit closes timing near the array's clock: input register; magnitude, mask and LFSR step; coarse
    shift (by 8s) and fraction; fine shift; `q >= 128` flag; stages 4-7 also hold the decision;
    increment and clamp of |q|; sign and the k = 0 select (written into an `OutputBuffer`).
    Backpressure on `o` stalls the pipeline one cycle later, through the buffer's registered clock
    enable.
    """

    def __init__(self, params: HardwareParams, mode: str | None = None,
                 shared_lfsr: bool = False, *, runtime_mode: bool = False):
        mode = params.round_mode if mode is None else mode
        if mode not in ROUND_MODES:
            self._MustUse__silence = True  # refused, never elaborated: no "unused" warning
            raise ValueError(f"mode must be one of {ROUND_MODES}; got {mode!r}")
        self.params = params
        self.mode = mode
        self.modes = ROUND_MODES if runtime_mode else (mode,)
        self.shared_lfsr = shared_lfsr and "stochastic" in self.modes
        shared = {"lfsr": Out(lfsr_port_signature(params))} if self.shared_lfsr else {}
        if runtime_mode:
            shared["mode_code"] = In(MODE_BITS)
        super().__init__({
            "i": In(stream.Signature(round_in_layout(params))),
            "o": Out(stream.Signature(round_out_layout(params))),
            "bad_shift": Out(1),
            **shared,
        })

    def elaborate(self, platform):
        m = Module()
        out = OutputBuffer(m, self.o)
        st = _Stages(m, out.en)
        ip, take = self.i.p, Signal()
        m.d.comb += [self.i.ready.eq(out.ready), take.eq(self.i.valid & out.en)]

        # Stage 1: the beat; stage 2: the mask of k. A refused beat takes the k = 0 path, zeroed.
        # Refusal is read from the registered k (stage 1), so the compare is no fan-out of the
        # input; only the LFSR step flags (registered at stage 1) read the input's k.
        k1 = st.reg(ip.k, "s1_k")
        valid1 = st.reg(take, "s1_valid", reset=True)
        refused1 = k1 > MAX_SHIFT
        with m.If(valid1 & refused1):
            m.d.sync += self.bad_shift.eq(1)
        x1 = [st.reg(x, f"s1_x{n}") for n, x in enumerate(ip.data)]
        only_saturate = st.delay((k1 == 0) | refused1, LATENCY - 2, "only_saturate")
        k2 = st.reg(k1, "s2_k")
        code, drawing = 0, take  # the beats that step the LFSR lanes
        if len(self.modes) > 1:
            code = self.mode_code
            drawing = take & (code == ROUND_MODES.index("stochastic"))
        shift = SimpleNamespace(m=m, st=st, params=self.params, k1=k1, k2=k2,
                                mask2=st.reg(low_mask(k1), "s2_mask"),
                                refused2=st.reg(refused1, "s2_refused"),
                                take=drawing, step=drawing & (ip.k != 0) & (ip.k <= MAX_SHIFT),
                                keep=ip.keep, last=ip.last,
                                lfsr=self.lfsr if self.shared_lfsr else None)
        decisions = [_DECISIONS[mode](shift) for mode in self.modes]
        self.lfsr_states = next((d.states for d in decisions if hasattr(d, "states")), ())
        for n, x in enumerate(x1):
            rounded, saturated = self._lane(n, x, shift, decisions, code)
            m.d.comb += out.data.data[n].eq(Mux(only_saturate, saturated, rounded))

        m.d.comb += [
            out.push.eq(out.en & st.delay(valid1, LATENCY - 2, "valid", reset=True)),
            out.data.last.eq(st.delay(ip.last, LATENCY - 1, "last")),
            out.data.keep.eq(st.delay(Mux(refused1, 0, st.reg(ip.keep, "s1_keep")), LATENCY - 2,
                                      "keep")),
            out.data.k.eq(st.delay(k2, LATENCY - 3, "k_out")),
        ]
        return m

    @staticmethod
    def _lane(n: int, x, shift, decisions, code):
        """One lane from x (stage 1) to R(x, k) and sat(x), both combinational on stage 8; the
        round-up of the decision `code` picks."""
        st = shift.st
        mag = st.reg(Mux(x < 0, -x, x)[:32], f"s2_mag{n}", unsigned(32))
        neg = st.reg(x < 0, f"s2_neg{n}")
        # sat(x): its range flags and low byte at stage 2, the clamp (zero for a refused beat)
        # at stage 3, so neither the OR/AND trees nor the refusal share a stage with the clamp
        over, under = (st.reg(flag, f"s2_{name}{n}") for flag, name
                       in zip(out_of_range(x, 8), ("over", "under")))
        low = st.reg(x[:8], f"s2_low{n}")
        saturated = Mux(shift.refused2, 0, clamp(over, under, low, 8))
        saturated = st.delay(saturated, LATENCY - 3, f"xsat{n}")
        # Stage 3: coarse shift by the multiple of 8 in k, and the fraction; stage 4: fine shift.
        coarse = st.reg(mag >> Cat(Const(0, 3), shift.k2[3:6]), f"s3_qc{n}", unsigned(32))
        fraction = st.reg(mag & shift.mask2, f"s3_f{n}")
        q = st.reg(coarse >> st.reg(shift.k2[:3], f"s3_k{n}"), f"s4_q{n}", unsigned(32))
        big = st.delay(st.reg(q[7:].any(), f"s5_big{n}"), DECISION_STAGE - 5, f"big{n}")
        q7 = st.delay(st.reg(q[:7], f"s5_q7_{n}"), DECISION_STAGE - 5, f"q7_{n}")
        ups = [decision.round_up(n, fraction, neg) for decision in decisions]
        up = ups[0]
        for index, other in enumerate(ups[1:], start=1):
            up = Mux(code == index, other, up)
        # Stage 8: |R| = min(q + up, 127); the output buffer's slot applies the sign.
        top = big | ((q7 == INT8_MAX) & up)
        magnitude = st.reg(Mux(top, INT8_MAX, q7 + up), f"s8_mag{n}", unsigned(7))
        negative = st.delay(neg, LATENCY - 3, f"neg{n}")
        return Mux(negative, -magnitude, magnitude), saturated


class _RoundHalfUp:
    """nearest: up when f >= 2**(k-1) for x >= 0, when f > 2**(k-1) for x < 0 (SPEC's
    (x + 2**(k-1)) >> k). Bit k-1 of f and the OR of the bits below it, then the sign."""

    def __init__(self, shift):
        st = shift.st
        self.st = st
        self.half = st.reg(shift.mask2 ^ (shift.mask2 >> 1), "s3_half_bit")
        self.below = st.reg(shift.mask2 >> 1, "s3_below_half")

    def round_up(self, n: int, fraction, neg):
        st = self.st
        at_half = st.reg((fraction & self.half).any(), f"s4_at_half{n}")
        beyond = st.reg((fraction & self.below).any(), f"s4_beyond{n}")
        negative = st.delay(neg, 2, f"s4_neg{n}")
        up = st.reg(at_half & (~negative | beyond), f"s5_up{n}")
        return st.delay(up, DECISION_STAGE - 5, f"up{n}")


class _PseudoRoundUp:
    """pseudo (the paper's Algorithm 2): f2 = f (>> 1 for odd k), h = k >> 1; up when
    (f2 >> h) > f2 mod 2**h. The shift by h is split in coarse and fine steps like q's."""

    def __init__(self, shift):
        st = shift.st
        self.st = st
        self.odd = st.reg(shift.k2[0], "s3_odd")
        self.h = st.delay(shift.k2 >> 1, 2, "s4_h")
        self.mask_h = st.delay(low_mask(shift.k1 >> 1, PSEUDO_BITS), 3, "s4_mask_h")
        self.h_fine = st.reg(self.h[:3], "s5_h")

    def round_up(self, n: int, fraction, neg):
        st = self.st
        f2 = st.reg(Mux(self.odd, fraction >> 1, fraction), f"s4_f2{n}", unsigned(32))
        coarse = st.reg((f2 >> Cat(Const(0, 3), self.h[3:5]))[:PSEUDO_BITS + 8], f"s5_fc{n}",
                        unsigned(PSEUDO_BITS + 8))
        low = st.reg(f2[:PSEUDO_BITS] & self.mask_h, f"s5_lo{n}")
        high = st.reg((coarse >> self.h_fine)[:PSEUDO_BITS], f"s6_hi{n}", unsigned(PSEUDO_BITS))
        return st.reg(high > st.reg(low, f"s6_lo{n}"), f"s7_up{n}")


class _StochasticRoundUp:
    """stochastic: up when f > r, r the low k bits of this element's LFSR lane, stepped at stage 2."""

    def __init__(self, shift):
        self.st = shift.st
        self.r2, self.states = _random_words(shift)
        self.mask2 = shift.mask2

    def round_up(self, n: int, fraction, neg):
        st = self.st
        r = st.reg(self.r2[n] & self.mask2, f"s3_r{n}")
        up = st.reg(fraction > r, f"s4_up{n}")
        return st.delay(up, DECISION_STAGE - 4, f"up{n}")


_DECISIONS = {"nearest": _RoundHalfUp, "pseudo": _PseudoRoundUp, "stochastic": _StochasticRoundUp}


def _random_words(shift) -> tuple[list, list]:
    """Each beat position's next LFSR state, registered at stage 2 (lane group g serves a beat:
    position n uses LFSR g*lanes + n; g restarts after `last`), and the LFSR registers (lane j
    is register j). Only kept lanes step.

    The LFSRs step at stage 2, from flags registered at stage 1, so their clock enables are the
    pipeline enable and two registers: the input handshake and the k-range test stop at stage 1
    instead of fanning out to every LFSR flip-flop (that path set the unit's Fmax). Beats step
    in order, so each still draws the states its predecessors left. Shared (`shift.lfsr`), the
    states are the port's and a step is a request on it, for the same edge."""
    m, st, p = shift.m, shift.st, shift.params
    L, G = p.lanes, p.lfsr_groups
    if shift.lfsr is None:
        init = lfsr_reset_states(p)
        states = [Signal(unsigned(32), init=init[j], name=f"lfsr{j}")
                  for j in range(p.lfsr_lanes)]
    else:
        states = [shift.lfsr.states[j] for j in range(p.lfsr_lanes)]
    steps = [st.reg(shift.step & shift.keep[n], f"s1_step{n}", reset=True) for n in range(L)]
    beat = st.reg(shift.take, "s1_beat", reset=True)
    last = st.reg(shift.last, "s1_last", reset=True)
    group = Signal(range(G), init=0)
    if G > 1:
        with m.If(st.en & beat):
            m.d.sync += group.eq(Mux(last | (group == G - 1), 0, group + 1))
    words = []
    for n in range(L):
        current = Signal(unsigned(32), name=f"lfsr_cur{n}")
        nxt = Signal(unsigned(32), name=f"lfsr_next{n}")
        # AND-OR select rather than a comb Switch: a comb process whose inputs sit at their
        # initial values is never evaluated by Icarus at time 0 and would read as X.
        picks = [states[g * L + n] & (group == g).replicate(32) for g in range(G)]
        m.d.comb += current.eq(_or_all(picks))
        m.d.comb += nxt.eq(lfsr_next(current))
        words.append(st.reg(nxt, f"s2_r{n}"))
        if shift.lfsr is not None:
            m.d.comb += [shift.lfsr.step[g * L + n].eq(st.en & steps[n] & (group == g))
                         for g in range(G)]
            continue
        with m.If(st.en & steps[n]):
            with m.Switch(group):
                for g in range(G):
                    with m.Case(g):
                        m.d.sync += states[g * L + n].eq(nxt)
    return words, states


def _or_all(values):
    result = values[0]
    for value in values[1:]:
        result = result | value
    return result
