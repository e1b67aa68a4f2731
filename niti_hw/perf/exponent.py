"""The lowered step under each exponent strategy (`HardwareParams.exponent`, see niti_hw.datapath).

`lower` writes the SPEC flow ("tensor"): every int32 GEMM result waits in the tensor buffer until
B of the whole tensor is known, then a rounding pass reads it back. The other strategies change
only where the narrowed values go:

- "predicted": k is known before the GEMM starts, so the rounding unit works on the drain: the
  GEMM stores no int32 result and the rounding pass reads none (the detector still measures B on
  the drain, for the next step). The transposed convolution still adds overlapping columns in
  int32 (col2im), so a conv error keeps its int32 tensor.
- "tile": each tile is rounded on the drain by its own k (no int32 tensor), and a second pass
  ("realign") reads the int8 values back and rounds them to the layer's largest k.
"""

from __future__ import annotations

from dataclasses import replace

from niti_hw.params import EXPONENTS
from niti_hw.perf.lowering import ACC, ACT, ALU_PER_ELEMENT, Access, Op


def _without(accesses, kind: str) -> tuple:
    return tuple(access for access in accesses if access.kind != kind)


def exponent_ops(ops: list[Op], exponent: str) -> list[Op]:
    """`ops` (from `lower`) as the datapath with `exponent` runs them."""
    if exponent not in EXPONENTS:
        raise ValueError(f"exponent must be one of {EXPONENTS}; got {exponent!r}")
    if exponent == "tensor":
        return list(ops)
    out: list[Op] = []
    drained: int | None = None  # index in `out` of the GEMM whose int32 result is being narrowed
    for op in ops:
        if op.is_gemm:
            drained = len(out) if any(kind == ACC for kind, _ in op.writes) else None
        elif op.op == "round" and drained is not None:
            gemm = out[drained]
            out[drained] = replace(gemm, writes=_without(gemm.writes, ACC))
            op = replace(op, reads=_without(op.reads, ACC))
            if exponent == "tile":
                tiles = Access(ACT, op.elements, f"{op.layer}.{op.phase}.tiles")
                out.append(replace(op, writes=(tiles,)))
                op = Op(op.layer, op.phase, "realign", elements=op.elements,
                        alu_ops=op.elements * ALU_PER_ELEMENT["round"],
                        reads=(tiles,), writes=op.writes)
            drained = None
        elif op.op != "bitwidth":
            drained = None
        out.append(op)
    return out


def int32_buffer_words(ops: list[Op]) -> dict[tuple[str, str], int]:
    """int32 values each (layer, phase) stores at once: what its tensor buffer must hold."""
    need: dict[tuple[str, str], int] = {}
    for op in ops:
        for kind, count in op.writes:
            if kind == ACC:
                key = (op.layer, op.phase)
                need[key] = max(need.get(key, 0), count)
    return need
