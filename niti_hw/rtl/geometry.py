"""What the sequencer's checks need of a geometry register: how many words each tensor of the
geometry's instructions spans, and whether the geometry is one the reference machine's golden
layers would walk as the address generators do."""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Signal, unsigned
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
        image_rows, image_row = Signal(BITS["batch"] + BITS["height"]), Signal(BITS["width"] + BITS["channels"])
        pooled_rows = Signal(BITS["batch"] + BITS["out_height"])
        pooled_row = Signal(BITS["out_width"] + BITS["channels"])
        depth, width, shaped = Signal(DEPTH_BITS), Signal(BITS["out_width"]), Signal()
        nonzero = [g[name] != 0 for name, _ in GEOMETRY_FIELDS[1:] if name != "padding"]
        m.d.sync += [  # stage 1
            image_rows.eq(g.batch * g.height), image_row.eq(g.width * g.channels),
            pooled_rows.eq(g.batch * g.out_height), pooled_row.eq(g.out_width * g.channels),
            depth.eq(g.kernel_h * g.kernel_w * g.channels), width.eq(g.out_width),
            shaped.eq(Cat(*nonzero).all()
                      & _fits(g.height, g.padding, g.kernel_h, g.stride, g.out_height)
                      & _fits(g.width, g.padding, g.kernel_w, g.stride, g.out_width)),
        ]
        windows, stage2_depth, stage2_shaped = Signal(WINDOW_BITS), Signal(DEPTH_BITS), Signal()
        inputs, outputs = Signal(IMAGE_BITS), Signal(IMAGE_BITS)
        m.d.sync += [  # stage 2
            inputs.eq(image_rows * image_row), outputs.eq(pooled_rows * pooled_row),
            windows.eq(pooled_rows * width), stage2_depth.eq(depth), stage2_shaped.eq(shaped),
        ]
        m.d.sync += [  # stage 3
            out.inputs.eq(inputs), out.outputs.eq(outputs), out.windows.eq(windows),
            out.depth.eq(stage2_depth), out.columns.eq(windows * stage2_depth),
            out.shaped.eq(stage2_shaped),
        ]
        return m

