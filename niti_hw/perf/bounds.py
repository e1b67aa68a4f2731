"""Lower bounds of one op's cost on the array: compute, compulsory DRAM traffic, and the traffic
any schedule needs with the chip's on-chip memory (its capacity bound).

- **Compute**: MACs / (rows x cols) cycles for a GEMM; a streaming op's values / `lanes` (none for
  B taken on a GEMM's drain).
- **Compulsory traffic**: every stored operand read from DRAM once, every result written once, and
  the int32 tensor as NITI needs it: SPEC takes B over the whole int32 output before any value is
  rounded, so the part of it beyond the tensor buffer goes to DRAM and back (`cost._stored`).
  Streaming ops move exactly this. A tensor left on chip between two ops (`perf.locality`) is
  compulsory traffic of neither. `cost.compulsory_bytes`.
- **Capacity bound** (GEMMs), after Hong and Kung (1981) as Irony, Toledo and Tiskin (2004) prove
  it for matrix products. Let S be the values the chip can hold: the SRAMs, the tensor buffer and
  the PEs' registers, counted in bytes (every value takes at least one). Cut any schedule into
  segments of S DRAM transfers each (the last may be shorter). A segment can use at most 2S values:
  the S on chip when it starts and the S it moves. Let a, b, c be the A, B and C entries it
  touches, a + b + c <= 2S. The MACs it performs are points (i, j, l) whose projections are those
  entries, so by the Loomis-Whitney inequality they number at most sqrt(a b c). An im2col
  operand repeats each stored value in up to R entries (R = ceil(kernel / stride)^2, `Op.reuse`),
  so its entries count up to R times the values held: MACs per segment <= sqrt(R) (2S / 3)^(3/2)
  (AM-GM). Hence segments >= MACs / (sqrt(R) (2S/3)^(3/2)) and every segment but the last moves
  S values: traffic >= S (ceil(MACs / (sqrt(R) (2S/3)^(3/2))) - 1) bytes. The bound reported is the
  larger of this and the compulsory traffic. It holds for any loop order, blocking or dataflow,
  and for any contents of the chip when the op starts (an operand the op before left there,
  `perf.locality`): the S values the first segment starts with may be any.
"""

from __future__ import annotations

from math import ceil, sqrt

from niti_hw.params import HardwareParams
from niti_hw.perf.lowering import Op


def on_chip_bytes(params: HardwareParams) -> int:
    """S: SRAMs, tensor buffer (int32) and the PEs' accumulator and operand registers."""
    sram = (params.ifmap_sram_kib + params.filter_sram_kib + params.ofmap_sram_kib) * 1024
    pes = params.rows * params.cols * (4 + 2)
    return sram + params.tensor_buffer_words * 4 + pes


def compute_bound_cycles(op: Op, params: HardwareParams) -> int:
    if op.is_gemm:
        return ceil(op.macs / (params.rows * params.cols))
    if op.op == "bitwidth" and not op.reads:  # on the GEMM's drain, hidden behind it
        return 0
    return ceil(op.elements / params.lanes)


def capacity_bound_bytes(op: Op, params: HardwareParams) -> int:
    """Least DRAM traffic of any schedule of GEMM `op` with this chip's storage (0 for others)."""
    if not op.is_gemm:
        return 0
    s = on_chip_bytes(params)
    per_segment = sqrt(op.reuse) * (2 * s / 3) ** 1.5
    return int(s * max(0, ceil(op.macs / per_segment) - 1))
