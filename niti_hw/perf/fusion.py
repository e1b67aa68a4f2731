"""Fusion of the streaming ops around the rounding replay, where a datapath could do it on the fly.

`lower` stores every op's result in DRAM and reads it back in the next op. A datapath whose
rounding replay streams the tensor in row-major (NHWC) order can apply what follows it to each
value as it leaves the rounding unit, so the intermediate tensor never leaves the chip:

- forward, `round` then `relu`: the replay writes the ReLU output and its mask (`round_relu`);
- then `pool`: the same stream is max-pooled on the fly with a line buffer of `kernel - 1` input
  rows (`Op.line_values`), held in the ofmap SRAM, idle during the replay; fused when the line buffer
  fits half of it (`round_relu_pool`: the pooled values, their winner indices and the ReLU mask);
- error phase, `round` then `relu_backward`: the replay reads the mask beside the int32 tensor and
  writes the masked error (`round_relu_backward`; the layer's weight gradient and update, which
  come between them in `lower`'s order, do not read that error);
- `pool_backward` then `relu_backward`: one streaming pass routes each error to its winner and
  masks it (`pool_relu_backward`).

The fused ops take the cycles of the pass they join (the replay, or the routing pass) and add the
ALU work of the op they absorb. Nothing else changes: GEMM operands still come from DRAM (a
layer's input is needed again by its weight gradient, so it is stored anyway). The RTL's replay has
no ReLU or pooling yet, so fused rows are analytical.
"""

from __future__ import annotations

from niti_hw.params import HardwareParams
from niti_hw.perf.lowering import MASK, Op

FUSED = ("round_relu", "round_relu_pool", "round_relu_backward", "pool_relu_backward")


def _merge(first: Op, second: Op, name: str, reads: tuple, writes: tuple) -> Op:
    return Op(first.layer, first.phase, name, elements=first.elements,
              alu_ops=first.alu_ops + second.alu_ops, reads=reads, writes=writes)


def _mask(op: Op) -> tuple:
    return tuple(pair for pair in op.reads if pair[0] == MASK)


def fuse(ops: list[Op], params: HardwareParams) -> list[Op]:
    """`ops` with ReLU and pooling folded into the passes before them (see the module docstring)."""
    line_budget = params.ofmap_sram_kib * 512  # int8 values in half the ofmap SRAM
    out: list[Op] = []
    for op in ops:
        last = out[-1] if out else None
        if last is not None and last.phase in ("forward", "error"):
            if last.op == "round" and op.op == "relu":
                out[-1] = _merge(last, op, "round_relu", last.reads, op.writes)
                continue
            if last.op == "round_relu" and op.op == "pool" and op.line_values <= line_budget:
                masks = tuple(pair for pair in last.writes if pair[0] == MASK)
                out[-1] = _merge(last, op, "round_relu_pool", last.reads, masks + op.writes)
                continue
            if last.op == "pool_backward" and op.op == "relu_backward":
                out[-1] = _merge(last, op, "pool_relu_backward", last.reads + _mask(op), op.writes)
                continue
        if op.op == "relu_backward":
            j = _error_producer(out)
            if j is not None and out[j].op == "round":
                out[j] = _merge(out[j], op, "round_relu_backward", out[j].reads + _mask(op),
                                op.writes)
                continue
        out.append(op)
    return out


def _error_producer(out: list[Op]) -> int | None:
    """Index of the pass that wrote the error a ReLU backward reads: the last error-phase op before
    the weight gradient and update of its layer (which do not read that error)."""
    j = len(out) - 1
    while j >= 0 and out[j].phase in ("gradient", "update"):
        j -= 1
    return j if j >= 0 and out[j].phase == "error" else None
