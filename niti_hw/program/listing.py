"""A compiled program as people and tools read it: a listing, a $readmemh image, JSON."""

from __future__ import annotations

import json

from niti_hw.params import HardwareParams
from niti_hw.perf.clock import CORE_UNITS, clock_mhz
from niti_hw.perf.timing import each_instruction_cycles, program_cycles
from niti_hw.program.compiler import Program
from niti_hw.program.isa import Bank, Geometry, Layout, Opcode, encode
from niti_hw.program.memory import BANK_PARAMS, bank_words

OPERANDS = {  # which operand roles each opcode uses, in listing order
    Opcode.GEMM: ("a", "b", "dst"), Opcode.COL2IM: ("a", "dst"), Opcode.BITWIDTH: ("a",),
    Opcode.ROUND: ("a", "dst"), Opcode.RELU: ("a", "dst", "aux"),
    Opcode.RELU_BACKWARD: ("a", "b", "dst"), Opcode.POOL: ("a", "dst", "aux"),
    Opcode.POOL_BACKWARD: ("a", "b", "dst"), Opcode.LOSS: ("a", "b", "dst"),
    Opcode.UPDATE: ("a", "dst", "aux"), Opcode.END: (),
}


def banks_table(program: Program, params: HardwareParams) -> list[str]:
    have = bank_words(params, program.weight_bits)
    lines = [f"{'bank':8} {'needs':>12} {'holds':>12}  sized by"]
    for bank in Bank:
        field = BANK_PARAMS[bank]
        lines.append(f"{bank.name.lower():8} {program.needs[bank]:>12,} {have[bank]:>12,}  "
                     f"{field} = {getattr(params, field)}")
    return lines


def _operands(item) -> str:
    parts = []
    roles = OPERANDS[item.opcode]
    if item.opcode == Opcode.UPDATE and item.n <= 8:
        roles = roles[:2]  # 8-bit weights: no int8 copy
    for role in roles:
        bank, base = Bank(getattr(item, f"{role}_bank")), getattr(item, f"{role}_base")
        layout = ""
        if role in ("a", "b") and item.opcode == Opcode.GEMM:
            layout = "." + Layout(getattr(item, f"{role}_layout")).name.lower()
        parts.append(f"{role}={bank.name.lower()}@{base}{layout}")
    if item.opcode == Opcode.GEMM:
        parts.append(f"{item.m}x{item.n}x{item.k}")
    elif item.opcode == Opcode.UPDATE:
        parts.append(f"{item.m} weights of {item.n} bits")
    elif item.opcode != Opcode.END:
        parts.append(f"{item.m}" + (f"x{item.n}" if item.n else ""))
    return " ".join(parts)


def core_time(program: Program, params: HardwareParams) -> str:
    """The step's cycles on the RTL core (`perf.timing`, equal to the core's in every bench) and,
    where the synthesis report has the core, its time at the core's measured clock."""
    cycles = program_cycles(program.instructions, params)
    line = f"a step on the core: {cycles:,} cycles"
    try:
        mhz, source = clock_mhz(params, units=CORE_UNITS)
    except ValueError:
        return line + " (no core in the synthesis report for a clock)"
    return line + f", {cycles / mhz / 1e3:.3f} ms at {mhz:g} MHz ({source})"


def listing(program: Program, params: HardwareParams) -> str:
    lines = [f"{len(program.instructions)} instructions, {len(program.words())} words; batch "
             f"{program.batch}, {program.classes} classes; {core_time(program, params)}", "",
             f"{'pc':>4}  {'cycles':>8}  {'opcode':14} {'op':18} operands"]
    cycles = each_instruction_cycles(program.instructions, params)
    for index, (item, source) in enumerate(zip(program.instructions, program.sources)):
        what = f"{source.layer} {source.phase}" if source is not None else ""
        if isinstance(item, Geometry):
            detail = (f"{item.batch}x{item.height}x{item.width}x{item.channels} kernel "
                      f"{item.kernel_h}x{item.kernel_w} stride {item.stride} padding "
                      f"{item.padding} -> {item.out_height}x{item.out_width}")
        else:
            detail = _operands(item)
        lines.append(f"{index:4}  {cycles[index]:>8,}  {item.opcode.name:14} {what:18} {detail}")
    return "\n".join(lines + [""] + banks_table(program, params)) + "\n"


def hex_image(program: Program, params: HardwareParams) -> str:
    """The instruction memory: one 32-bit word a line, lowest word of each instruction first."""
    return "".join(f"{word:08x}\n" for word in program.words())


def as_json(program: Program, params: HardwareParams) -> str:
    instructions = []
    for item, source in zip(program.instructions, program.sources):
        fields = {name: int(value) for name, value in vars(item).items() if name != "opcode"}
        instructions.append({"opcode": item.opcode.name, "words": encode(item), **fields,
                             "op": None if source is None else
                             {"layer": source.layer, "phase": source.phase, "op": source.op}})
    tensors = {name: {"bank": place.bank.name.lower(), "base": place.base, "words": place.words,
                      "exponent": place.exponent} for name, place in program.tensors.items()}
    needs = {bank.name.lower(): words for bank, words in program.needs.items()}
    return json.dumps({"batch": program.batch, "classes": program.classes,
                       "weight_bits": program.weight_bits,
                       "instructions": instructions, "tensors": tensors, "needs": needs,
                       "params": json.loads(params.to_json())}, indent=1) + "\n"


FORMATS = {"listing": listing, "hex": hex_image, "json": as_json}
