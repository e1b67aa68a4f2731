"""Tensors that stay on chip from one op to the next instead of going through DRAM.

`lower` stores every int8 tensor (activations, errors, ReLU masks, pooling indices, weights) in
DRAM and reads it back in every op that needs it; int32 results stay in the tensor buffer, the part
beyond it spilling as NITI's whole-tensor exponent needs (`perf.cost`). This pass
(`niti-hw estimate --keep-on-chip`) leaves int32 alone, on the fp32 datapath too (which has no
buffer for results), and models a datapath that keeps other tensors where the next op reads them:

- **Which tensors.** One written by an op and read by the very next op of the step (after
  `perf.fusion` when fusing). A tensor that skips over ops is not kept: those ops use the SRAMs
  themselves (a layer's error waits through its weight gradient and update before the ReLU
  backward below reads it).
- **Where, and when it fits.** Producers of such tensors are streaming ops (GEMMs write int32
  only), which use no SRAM but half the ofmap SRAM for a fused pooling's line buffer. The tensor
  waits where its consumer reads it from: a GEMM's A in half the ifmap SRAM and B in half the
  filter SRAM (the half `perf.mapping` gives that operand's working set, so a tensor that fits is
  fetched once under every mapping and keeping it removes exactly that fetch); a streaming op's
  input in the half of the ofmap SRAM that the line buffer leaves. It is kept when its bytes on the
  costed datapath fit; tensors kept in one buffer for one consumer add up.
- **Costs** (`cost.op_traffic`). The producer writes the tensor into the consumer's buffer (SRAM
  write bytes); the consumer reads it there: a GEMM skips the DRAM fetch of that operand and the
  SRAM write the fetch made, a streaming op reads the SRAM instead of DRAM. The producer still
  writes the tensor to DRAM, once, when any other op of the step reads it (a layer's input, read
  again by its weight gradient; a weight, read in the forward pass and by the next step); a
  tensor that only its consumer reads never reaches DRAM.
- **Overlaps.** None beyond the model's own: ops run one after another, and each overlaps its own
  DRAM traffic with its own compute (stall = DRAM cycles beyond compute). Keeping a tensor removes
  bytes, and so the stall they caused, from both ends; the producer and consumer do not run at
  the same time, and no op's transfers hide behind another op's compute.
- **Bounds stay bounds.** A kept input and an unstored output are not compulsory traffic of their
  op (`cost.compulsory_bytes` leaves them out), so the compulsory bound falls with the traffic.
  The capacity bound (`perf.bounds`) needs no change: its segment argument lets every segment,
  the first included, start with up to S values on chip and counts no final write-back, so a
  GEMM operand already on chip at the start is one of those S values; the bound holds for any
  starting contents.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from typing import Callable

from niti_hw.params import HardwareParams
from niti_hw.perf.lowering import ACC, Op

GEMM_BUFFERS = ("ifmap", "filter")
"""Where a GEMM reads its A and B operands (its reads, in order); streaming ops read "ofmap"."""


def free_bytes(params: HardwareParams) -> dict[str, int]:
    """Bytes each buffer holds for tensors kept for one consumer: half of each SRAM."""
    return {name: getattr(params, f"{name}_sram_kib") * 512
            for name in ("ifmap", "filter", "ofmap")}


def consumer_buffer(op: Op, slot: int) -> str:
    """The buffer `op` reads its `slot`-th input from when that input is kept on chip."""
    return GEMM_BUFFERS[slot] if op.is_gemm else "ofmap"


def keep_on_chip(ops: list[Op], params: HardwareParams,
                 size: Callable[[str, int], int]) -> list[Op]:
    """`ops` with `kept_in`, `kept_out` and `unstored` set where a tensor stays on chip (see the
    module docstring); `size(kind, count)` is the bytes of those values on the costed datapath."""
    readers = Counter(access.tensor for op in ops for access in op.reads if access.tensor)
    out = list(ops)
    for i in range(len(out) - 1):
        producer, consumer = out[i], out[i + 1]
        written = {access.tensor for access in producer.writes
                   if access.tensor and access.kind != ACC}
        free = free_bytes(params)
        kept = []
        for slot, access in enumerate(consumer.reads):
            if access.tensor not in written:
                continue
            buffer = consumer_buffer(consumer, slot)
            need = size(access.kind, access.count)
            if need <= free[buffer]:
                free[buffer] -= need
                kept.append((access.tensor, buffer))
        if kept:
            unstored = tuple(tensor for tensor, _ in kept if readers[tensor] == 1)
            out[i] = replace(producer, kept_out=tuple(kept), unstored=unstored)
            out[i + 1] = replace(consumer, kept_in=tuple(kept))
    return out
