"""What the sequencer's checks need of a geometry register: how many words each tensor of the
geometry's instructions spans, and whether the geometry is one the reference machine's golden
layers would walk as the address generators do."""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Signal, Value, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from niti_hw.perf.timing import FETCH_CYCLES, GEOMETRY_CHECK_LATENCY, RETIRE_CYCLES
from niti_hw.program.isa import GEOMETRY_FIELDS
from niti_hw.rtl.instruction import geometry_layout

if GEOMETRY_CHECK_LATENCY != 3 or GEOMETRY_CHECK_LATENCY > RETIRE_CYCLES + FETCH_CYCLES + 1:
    raise RuntimeError("rtl/geometry.py registers its products in three stages, ready by the next "
                       "instruction's check: perf.timing's GEOMETRY_CHECK_LATENCY must say 3")

BITS = dict(GEOMETRY_FIELDS)
IMAGE_BITS = BITS["batch"] + BITS["height"] + BITS["width"] + BITS["channels"]
WINDOW_BITS = BITS["batch"] + BITS["out_height"] + BITS["out_width"]
DEPTH_BITS = BITS["kernel_h"] + BITS["kernel_w"] + BITS["channels"]


def extents_layout() -> data.StructLayout:
    """`inputs`: N*H*W*C; `outputs`: N*OH*OW*C; `windows`: N*OH*OW; `depth`: KH*KW*C;
    `columns`: windows * depth; `shaped`: no field but padding is 0 and OH, OW are golden's
    (H + 2 * padding - KH) // stride + 1 (W likewise)."""
    return data.StructLayout({
        "inputs": unsigned(IMAGE_BITS), "outputs": unsigned(IMAGE_BITS),
        "windows": unsigned(WINDOW_BITS), "depth": unsigned(DEPTH_BITS),
        "columns": unsigned(WINDOW_BITS + DEPTH_BITS), "shaped": 1,
    })


def _fits(size, padding, kernel, stride, out):
    """out == (size + 2 * padding - kernel) // stride + 1, without a divider."""
    span = size + 2 * padding
    return (out != 0) & ((out - 1) * stride + kernel <= span) & (span < out * stride + kernel)


class GeometryExtents(wiring.Component):
    """`geometry` -> `extents`, `GEOMETRY_CHECK_LATENCY` (3) registered stages of products."""

    def __init__(self):
        super().__init__({"geometry": In(geometry_layout()), "extents": Out(extents_layout())})

    def elaborate(self, platform):
        g, out = self.geometry, self.extents
        m = Module()
        nonzero = [g[name] != 0 for name, _ in GEOMETRY_FIELDS[1:] if name != "padding"]
        stage1 = {
            "image_rows": g.batch * g.height, "image_row": g.width * g.channels,
            "pooled_rows": g.batch * g.out_height, "pooled_row": g.out_width * g.channels,
            "depth": g.kernel_h * g.kernel_w * g.channels, "width": g.out_width,
            "shaped": (Cat(*nonzero).all()
                       & _fits(g.height, g.padding, g.kernel_h, g.stride, g.out_height)
                       & _fits(g.width, g.padding, g.kernel_w, g.stride, g.out_width)),
        }
        r1 = _registers(m, stage1, "stage1")
        r2 = _registers(m, {
            "inputs": r1["image_rows"] * r1["image_row"],
            "outputs": r1["pooled_rows"] * r1["pooled_row"],
            "windows": r1["pooled_rows"] * r1["width"], "depth": r1["depth"],
            "shaped": r1["shaped"],
        }, "stage2")
        m.d.sync += [out.inputs.eq(r2["inputs"]), out.outputs.eq(r2["outputs"]),
                     out.windows.eq(r2["windows"]), out.depth.eq(r2["depth"]),
                     out.columns.eq(r2["windows"] * r2["depth"]), out.shaped.eq(r2["shaped"])]
        return m


def _registers(m: Module, values: dict, stage: str) -> dict:
    """Each value into a register of its own width, named after it."""
    registers = {name: Signal(value.shape(), name=f"{stage}_{name}")
                 for name, value in ((n, Value.cast(v)) for n, v in values.items())}
    m.d.sync += [registers[name].eq(value) for name, value in values.items()]
    return registers
