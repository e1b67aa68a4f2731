"""Weight update of SPEC: W = sat(W - g) on `weight_bits`-wide weights, and the int8 read-out
w = R(W, weight_bits - 8, nearest) the next forward pass multiplies with."""

from __future__ import annotations

from amaranth.hdl import Module, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from niti_hw.golden.init import ACC_BITS_RANGE
from niti_hw.params import HardwareParams
from niti_hw.perf.timing import UPDATE_LATENCY
from niti_hw.rtl.layouts import INT8
from niti_hw.rtl.output_buffer import OutputBuffer
from niti_hw.rtl.saturate import saturate


def update_in_layout(p: HardwareParams, weight_bits: int) -> data.StructLayout:
    """`lanes` stored weights W and their int8 gradients g; `last` marks a tensor's final beat."""
    return data.StructLayout({
        "w": data.ArrayLayout(signed(weight_bits), p.lanes),
        "g": data.ArrayLayout(INT8, p.lanes),
        "last": 1,
    })


def update_out_layout(p: HardwareParams, weight_bits: int) -> data.StructLayout:
    """The updated weights W' and their int8 read-out R(W', weight_bits - 8, nearest)."""
    return data.StructLayout({
        "w": data.ArrayLayout(signed(weight_bits), p.lanes),
        "q": data.ArrayLayout(INT8, p.lanes),
        "last": 1,
    })


class WeightUpdate(wiring.Component):
    """`lanes` weights per beat: W' = sat(W - g) at +-(2**(weight_bits-1) - 1), q = R(W', s, nearest)
    with s = weight_bits - 8 (0 only saturates), the golden `IntegerWeights.apply` / `as_int8`.

    `weight_bits` is the stored weight width of training (TrainConfig.acc_bits, 8..24), not the
    array's accumulator. A read-out without update is a beat with g = 0. Throughput: one beat per
    cycle. Latency: `UPDATE_LATENCY` cycles from acceptance to a valid output (subtract;
    saturate; add half; shift and clamp into the output buffer). Backpressure on `o` stalls the
    pipeline one cycle later, through the buffer's registered clock enable.
    """

    def __init__(self, params: HardwareParams, weight_bits: int):
        low, high = ACC_BITS_RANGE
        if isinstance(weight_bits, bool) or not isinstance(weight_bits, int) \
                or not low <= weight_bits <= high:
            raise ValueError(f"weight_bits must be an int in {low}..{high} (TrainConfig.acc_bits); "
                             f"got {weight_bits!r}")
        self.params, self.weight_bits = params, weight_bits
        super().__init__({
            "i": In(stream.Signature(update_in_layout(params, weight_bits))),
            "o": Out(stream.Signature(update_out_layout(params, weight_bits))),
        })

    def elaborate(self, platform):
        p, bits = self.params, self.weight_bits
        shift = bits - 8
        m = Module()
        out = OutputBuffer(m, self.o)
        en = out.en
        m.d.comb += self.i.ready.eq(out.ready)
        take = self.i.valid & en

        def stage(value, shape, name, reset=False):  # data registers have no reset, flags do
            reg = Signal(shape, name=name, reset_less=not reset)
            with m.If(en):
                m.d.sync += reg.eq(value)
            return reg

        valid = take
        last = self.i.p.last
        for n in range(UPDATE_LATENCY - 1):  # the last stage is the output buffer's slot
            valid, last = stage(valid, 1, f"valid{n}", reset=True), stage(last, 1, f"last{n}")
        for lane in range(p.lanes):
            diff = stage(self.i.p.w[lane] - self.i.p.g[lane], signed(bits + 1), f"diff{lane}")
            clamped = saturate(diff, bits)
            w_new = stage(clamped, signed(bits), f"w{lane}")
            half = (1 << (shift - 1)) if shift else 0
            near = stage((w_new + half) >> shift, signed(bits + 1 - shift), f"near{lane}")
            w_out = stage(w_new, signed(bits), f"w_out{lane}")
            m.d.comb += [out.data.w[lane].eq(w_out), out.data.q[lane].eq(saturate(near, 8))]
        m.d.comb += [out.push.eq(en & valid), out.data.last.eq(last)]
        return m
