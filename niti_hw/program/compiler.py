"""Compile one NITI training step of a model into a sequencer program.

The program is the step's lowering (`niti_hw.perf.lowering.lower`), one instruction per
operation, in golden's order (updates after the backward pass, `updates="after_backward"`), so
the cost model and the program cannot drift apart. The compiler adds only what the lowering
leaves to the hardware: where each tensor lives (`niti_hw.program.memory`), how each GEMM
operand is read (`Layout`), the geometry the address generators walk, and the exponent
registers.
"""

from __future__ import annotations

from dataclasses import dataclass

from niti_hw.golden import INT8_MAX, check_reduction_length
from niti_hw.params import HardwareParams
from niti_hw.perf.lowering import (ACC, INPUT, LOSS_ERROR, MASK, INDEX, WEIGHT, Op,
                                   check_reductions, layer_shapes, lower, parse_model)
from niti_hw.program.isa import (EXPONENT_REGISTERS, KEEP_M_U, LOWERED_OPCODES, Bank, Geometry,
                                 Instruction, Kind, Layout, Opcode, encode)
from niti_hw.program.memory import (BANK_PARAMS, EXPONENTS, Lifetime, allocate, bank_words,
                                    sized_for)

LABELS = "labels"
"""The batch's class labels (one int8 word each, in the error bank), loaded by the host."""
KEEP_INT8 = INT8_MAX.bit_length()
"""Magnitude bits a narrowing to int8 keeps: k = max(0, B - 7) (SPEC)."""
ROUND_KINDS = {"forward": Kind.ACTIVATION, "error": Kind.ERROR, "update": Kind.GRADIENT}


@dataclass(frozen=True)
class Placement:
    bank: Bank
    base: int
    words: int
    exponent: int | None
    """Its exponent register (None for masks, winners, labels and gradients)."""


@dataclass(frozen=True)
class Program:
    """A compiled step: instructions, where every tensor lives, and what the banks must hold."""

    instructions: tuple
    tensors: dict[str, Placement]
    needs: dict[Bank, int]
    """Words each bank must hold for this program."""
    sources: tuple[Op | None, ...]
    """The lowered operation each instruction runs (None: geometry and END)."""
    weighted: tuple[str, ...]
    """Weighted layers in forward order: the golden `Sequential.weighted_layers`, one to one."""
    logits: str
    batch: int
    classes: int
    weight_bits: int
    """Bits of the stored weights (golden `IntegerWeights.acc_bits`); above 8 the GEMMs read an
    int8 copy (`<layer>.weight8`) that each UPDATE writes beside the weights."""

    def words(self) -> list[int]:
        """The whole program as the host writes it to the instruction memory."""
        return [word for item in self.instructions for word in encode(item)]


@dataclass
class _Draft:
    """An instruction with tensor names where banks, bases and exponent registers will go."""

    opcode: Opcode
    source: Op | None = None
    geometry: Geometry | None = None
    a: str = ""
    b: str = ""
    dst: str = ""
    aux: str = ""
    fields: dict | None = None


def compile_step(model, input_shape, batch: int, params: HardwareParams,
                 classes: int | None = None, fit: bool = False, weight_bits: int = 8) -> Program:
    """The program of one training step of `model` on `batch` inputs of shape (C, H, W).

    Every tensor starts at a multiple of `params.lanes` (a bank row). Tensors must fit the banks
    `params` sizes, or the compiler says which bank, how many words it
    needs and which parameter to raise; `fit=True` sizes the memories for the program instead
    (`program_params` gives them). `weight_bits` (8..24) is the stored weights' width.
    """
    spec = parse_model(model)
    ops = lower(spec, input_shape, batch, classes, weight_bits, updates="after_backward")
    workload = f"{spec.name} on {'x'.join(map(str, input_shape))} inputs, batch {batch}"
    check_reductions(ops, params, workload, batch)
    layers = layer_shapes(spec, input_shape, classes)
    drafts = _drafts(ops, layers, batch, weight_bits)
    drafts.append(_Draft(Opcode.END))
    weighted = tuple(name for name, layer in layers.items() if hasattr(layer, "weights"))
    last = list(layers.values())[-1]
    logits = last.tensor("out")
    stored = [f"{name}.weight{suffix}" for name in weighted
              for suffix in ("", "8")[:1 + (weight_bits > 8)]]
    lifetimes = _lifetimes(drafts, ops, layers, stored, logits, batch)
    bases, needs = allocate(lifetimes, align=params.lanes)
    exponents = _exponent_registers(lifetimes, workload)
    tensors = {name: Placement(life.space, bases[name], life.words, exponents.get(name))
               for name, life in lifetimes.items() if life.space != EXPONENTS}
    needs = {bank: needs.get(bank, 0) for bank in Bank}
    if not fit:
        _check_fits(needs, params, workload, weight_bits)
    return Program(tuple(_resolve(d, tensors) for d in drafts), tensors, needs,
                   tuple(d.source for d in drafts), weighted, logits, batch,
                   last.out_features, weight_bits)


def program_params(program: Program, params: HardwareParams) -> HardwareParams:
    """`params` with memories large enough for `program` (simulation of a large model)."""
    return sized_for(params, program.needs, program.weight_bits)


def _check_fits(needs: dict[Bank, int], params: HardwareParams, workload: str,
                weight_bits: int) -> None:
    have = bank_words(params, weight_bits)
    short = [bank for bank in Bank if needs[bank] > have[bank]]
    if short:
        detail = "; ".join(
            f"the {bank.name.lower()} bank needs {needs[bank]:,} words and holds {have[bank]:,} "
            f"({BANK_PARAMS[bank]} = {getattr(params, BANK_PARAMS[bank])})" for bank in short)
        raise ValueError(f"{workload} does not fit on chip: {detail}; raise those parameters, "
                         "use a smaller batch, or size the memories for it (fit=True; --fit)")


def _drafts(ops: list[Op], layers: dict, batch: int, weight_bits: int) -> list[_Draft]:
    drafts: list[_Draft] = []
    geometry = {Opcode.CONV_GEOMETRY: None, Opcode.POOL_GEOMETRY: None}
    for index, op in enumerate(ops):
        layer = layers.get(op.layer)
        draft = _draft(op, layer, ops[index + 1] if index + 1 < len(ops) else None, batch,
                       weight_bits)
        needed = _geometry(op, layer, batch)
        if needed is not None and geometry[needed.opcode] != needed:
            geometry[needed.opcode] = needed
            drafts.append(_Draft(needed.opcode, geometry=needed))
        drafts.append(draft)
    return drafts


def _geometry(op: Op, layer, batch: int) -> Geometry | None:
    """The geometry an op's address generator walks: im2col reads (conv forward and gradient),
    col2im, and pooling; None for the others."""
    if op.op in ("pool", "pool_backward"):
        kernel, opcode = layer.spec.kernel, Opcode.POOL_GEOMETRY
        stride, padding = layer.spec.stride or kernel, 0
    elif layer is not None and hasattr(layer, "depth") and op.op in ("gemm", "col2im") and not (
            op.op == "gemm" and op.phase == "error"):
        kernel, opcode = layer.spec.kernel, Opcode.CONV_GEOMETRY
        stride, padding = layer.spec.stride, layer.spec.padding
    else:
        return None
    (h, w, c), (oh, ow, _) = layer.inp.dims, layer.out.dims
    return Geometry(opcode, batch, h, w, c, kernel, kernel, stride, padding, oh, ow)


def _draft(op: Op, layer, following: Op | None, batch: int, weight_bits: int) -> _Draft:
    opcode = LOWERED_OPCODES[op.op]
    reads = [access.tensor for access in op.reads]
    writes = [access.tensor for access in op.writes]
    if opcode == Opcode.GEMM:
        return _gemm(op, layer, reads, writes)
    if opcode == Opcode.COL2IM:
        return _Draft(opcode, op, a=layer.tensor("cols32"), dst=writes[0],
                      fields=dict(m=op.elements // layer.depth, n=layer.depth))
    if opcode == Opcode.BITWIDTH:  # on the GEMM's drain: the tensor its round reads next
        return _Draft(opcode, op, a=reads[0] if reads else following.reads[0].tensor,
                      fields=dict(m=op.elements))
    if opcode == Opcode.ROUND:
        kind = ROUND_KINDS[op.phase]
        keep = KEEP_M_U if kind == Kind.GRADIENT else KEEP_INT8
        dst = writes[0] if writes else layer.tensor("grad")  # the update unit's operand
        return _Draft(opcode, op, a=reads[0], dst=dst, fields=dict(m=op.elements, kind=kind,
                                                                   keep=keep))
    if opcode in (Opcode.RELU, Opcode.POOL):
        return _Draft(opcode, op, a=reads[0], dst=writes[0], aux=writes[1],
                      fields=dict(m=op.elements))
    if opcode in (Opcode.RELU_BACKWARD, Opcode.POOL_BACKWARD):
        return _Draft(opcode, op, a=reads[0], b=reads[1], dst=writes[0],
                      fields=dict(m=op.elements))
    if opcode == Opcode.LOSS:
        return _Draft(opcode, op, a=reads[0], b=LABELS, dst=writes[0],
                      fields=dict(m=batch, n=op.elements // batch, kind=Kind.LOSS))
    return _Draft(opcode, op, a=layer.tensor("grad"), dst=writes[0],  # UPDATE, in place
                  aux=writes[1] if len(writes) > 1 else "",  # the int8 copy of wide weights
                  fields=dict(m=op.elements, n=weight_bits))


def _gemm(op: Op, layer, reads, writes) -> _Draft:
    conv = hasattr(layer, "depth")
    shape = dict(m=op.m, n=op.n, k=op.k)
    if op.phase == "forward":
        return _Draft(Opcode.GEMM, op, a=reads[0], b=reads[1], dst=writes[0], fields=dict(
            shape, a_layout=Layout.IM2COL if conv else Layout.ROWS, b_layout=Layout.ROWS))
    if op.phase == "error":
        if conv:
            check_reduction_length(layer.cout * (-(-layer.spec.kernel // layer.spec.stride)) ** 2,
                                   f"{layer.name} transposed convolution")
        return _Draft(Opcode.GEMM, op, a=reads[0], b=reads[1],
                      dst=layer.tensor("cols32") if conv else writes[0],
                      fields=dict(shape, a_layout=Layout.ROWS, b_layout=Layout.TRANSPOSED))
    return _Draft(Opcode.GEMM, op, a=reads[0], b=reads[1], dst=writes[0], fields=dict(
        shape, a_layout=Layout.IM2COL_TRANSPOSED if conv else Layout.TRANSPOSED,
        b_layout=Layout.ROWS))


def _bank(name: str, kind: str) -> Bank:
    if kind == ACC:
        return Bank.ACC
    if kind == WEIGHT or name.endswith(".weight8"):
        return Bank.WEIGHT
    errors = name in (LOSS_ERROR, LABELS) or name.endswith((".err", ".grad"))
    return Bank.ERR if kind in (MASK, INDEX) or errors else Bank.ACT


def _lifetimes(drafts, ops, layers, stored, logits, batch) -> dict[str, Lifetime]:
    """Every tensor's bank, words and lifetime, from the drafts' names and the ops' counts;
    `stored` are the weights (and their int8 copies), loaded and read back by the host."""
    end = len(drafts)
    sizes: dict[str, tuple[Bank, int]] = {LABELS: (Bank.ERR, batch)}
    for op in ops:
        for access in op.reads + op.writes:
            if access.tensor:
                sizes[access.tensor] = (_bank(access.tensor, access.kind), access.count)
    for name, layer in layers.items():
        if hasattr(layer, "weights"):
            sizes[layer.tensor("grad")] = (Bank.ERR, layer.weights)
        if hasattr(layer, "depth"):
            error_gemm = next((op for op in ops if op.layer == name and op.phase == "error"), None)
            if error_gemm is not None:
                sizes[layer.tensor("cols32")] = (Bank.ACC, error_gemm.m * error_gemm.n)
    first, last = {}, {}
    for index, draft in enumerate(drafts):
        for name in (draft.a, draft.b):
            if name:
                last[name] = index
        for name in (draft.dst, draft.aux):
            if name:
                first.setdefault(name, index)
                last.setdefault(name, index)
    for name in [INPUT, LABELS, *stored]:
        first[name] = -1
    for name in [logits, *stored]:
        last[name] = end
    return {name: Lifetime(*sizes[name], first[name], last[name]) for name in first}


def _exponent_registers(lifetimes: dict[str, Lifetime], workload: str) -> dict[str, int]:
    """A register per int8 or int32 tensor whose exponent the step carries, shared by tensors
    whose lives do not overlap."""
    carried = {name: Lifetime(EXPONENTS, 1, life.first, life.last)
               for name, life in lifetimes.items()
               if name != LABELS and not name.endswith((".mask", ".index", ".grad"))}
    registers, needs = allocate(carried)
    if needs.get(EXPONENTS, 0) > EXPONENT_REGISTERS:
        raise ValueError(f"{workload} needs {needs[EXPONENTS]} exponent registers at once; the "
                         f"instruction set names {EXPONENT_REGISTERS}")
    return registers


def _resolve(draft: _Draft, tensors: dict[str, Placement]):
    if draft.geometry is not None:
        return draft.geometry
    fields = dict(draft.fields or {})
    for role in ("a", "b", "dst", "aux"):
        name = getattr(draft, role)
        if name:
            place = tensors[name]
            fields[f"{role}_bank"], fields[f"{role}_base"] = place.bank, place.base
            if role != "aux" and place.exponent is not None:
                fields[f"{role}_exp"] = place.exponent
    return Instruction(draft.opcode, **fields)
