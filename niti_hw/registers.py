"""The control and status register map: one definition for the RTL, the docs and host code.

Pure Python (no Amaranth): `rtl.axi_lite.AxiLiteRegisters` builds its registers from a
`RegisterMap`, `niti_hw.register_docs` writes the table in rtl/README.md and a C header for a
driver, and host code reads offsets, fields and reset values from the same objects.

Every register is 32 bits wide at a word-aligned byte offset; its fields have an access kind:

- CONST: read-only constant (the reset value); writes are ignored.
- RO: read-only, driven by the hardware; writes are ignored.
- RW: read/write storage, reset to the field's reset value; WSTRB selects the bytes written.
- W1P: write 1 to pulse: each bit written 1 (in a strobed byte) is a one-cycle strobe; reads 0.
- W1C: read-only status that the hardware holds (sticky); writing 1 to a bit asks it to clear it.
- RWH: read from the hardware; a write hands the field (its strobed bytes, the rest as read) to
  the hardware with a one-cycle strobe, which takes it or not (the core's exponent registers).

Bits outside every field read 0 and ignore writes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from niti_hw.golden import INT32_SAFE_K
from niti_hw.params import (MAX_ACC_BITS, MAX_ARRAY_DIM, MAX_BUFFER_WORDS, MAX_LANES,
                            MAX_LFSR_LANES, ROUND_MODES, HardwareParams)
from niti_hw.golden.tensor import TENSOR_KINDS
from niti_hw.perf.timing import TENSOR_CFG_FIELDS, TENSOR_DIM_BITS
from niti_hw.program.isa import EXPONENT_REGISTERS, INSTRUCTION_WORDS
from niti_hw.program.memory import bank_words
from niti_hw.stream_frames import ERROR_BITS, Error

WORD_BITS = 32
WORD_BYTES = WORD_BITS // 8
ADDR_BITS = 12
"""Byte-address width of the register window (4 KiB, one page)."""

ACCESS_KINDS = {
    "CONST": "read-only constant",
    "RO": "read-only, from the hardware",
    "RW": "read/write",
    "W1P": "write 1 to pulse (one cycle); reads 0",
    "W1C": "sticky status; write 1 to clear",
    "RWH": "read from the hardware; a write is handed to it",
}

MAGIC = 0x4E495449
"""ID register: "NITI" in ASCII."""
MAP_VERSION = (1, 0)
"""(major, minor) of this register map: major changes when an offset or field moves."""
CORE_MAP_VERSION = (1, 0)
"""(major, minor) of the NITI core's register map (`core_register_map`)."""

_NAME = re.compile(r"[A-Za-z][A-Za-z0-9]*(_[A-Za-z0-9]+)*")


@dataclass(frozen=True)
class Field:
    """Bits lsb .. lsb + width - 1 of a register."""

    name: str
    lsb: int
    width: int
    access: str
    reset: int = 0
    doc: str = ""

    @property
    def msb(self) -> int:
        return self.lsb + self.width - 1

    @property
    def mask(self) -> int:
        """The field's bits in the register word."""
        return ((1 << self.width) - 1) << self.lsb

    @property
    def bits(self) -> str:
        return f"{self.msb}:{self.lsb}" if self.width > 1 else str(self.lsb)


@dataclass(frozen=True)
class Register:
    name: str
    offset: int
    fields: tuple[Field, ...]
    doc: str = ""

    @property
    def reset(self) -> int:
        """The word read after reset (W1P fields read 0; RO and W1C fields show their reset)."""
        return sum(f.reset << f.lsb for f in self.fields if f.access != "W1P")

    def field(self, name: str) -> Field:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(f"register {self.name} has no field {name!r}; fields: "
                       f"{', '.join(f.name for f in self.fields)}")


@dataclass(frozen=True)
class RegisterMap:
    """Registers in offset order; validated on construction (ValueError names the problem)."""

    registers: tuple[Register, ...]
    addr_bits: int = ADDR_BITS

    def __post_init__(self) -> None:
        check_map(self)

    def __getitem__(self, name: str) -> Register:
        for reg in self.registers:
            if reg.name == name:
                return reg
        raise KeyError(f"no register {name!r}; registers: "
                       f"{', '.join(r.name for r in self.registers)}")

    def at(self, offset: int) -> Register | None:
        """The register whose word holds byte `offset`, or None (unmapped)."""
        word = offset - offset % WORD_BYTES
        return next((reg for reg in self.registers if reg.offset == word), None)


def port_name(reg: Register, field: Field) -> str:
    """The hardware's name of a field: `<register>_<field>` in lower case."""
    return f"{reg.name}_{field.name}".lower()


def check_map(regmap: RegisterMap) -> None:
    """Unique names, aligned offsets inside the window, no overlaps, fields within 32 bits, known
    access kinds, reset values that fit."""
    window = 1 << regmap.addr_bits
    seen_names, seen_offsets, seen_ports = {}, {}, {}
    for reg in regmap.registers:
        if not _NAME.fullmatch(reg.name):
            raise ValueError(f"register name {reg.name!r} must be letters, digits and single "
                             "underscores, starting with a letter (it names hardware ports)")
        if reg.name in seen_names:
            raise ValueError(f"register name {reg.name} is used twice: names must be unique")
        seen_names[reg.name] = reg
        if reg.offset % WORD_BYTES or not 0 <= reg.offset < window:
            raise ValueError(f"register {reg.name}: offset {reg.offset:#x} must be a multiple of "
                             f"{WORD_BYTES} in 0x0..{window - WORD_BYTES:#x}")
        if reg.offset in seen_offsets:
            raise ValueError(f"registers {seen_offsets[reg.offset]} and {reg.name} overlap at "
                             f"offset {reg.offset:#x}: give each its own word")
        seen_offsets[reg.offset] = reg.name
        if not reg.fields:
            raise ValueError(f"register {reg.name} has no fields")
        used = 0
        for f in reg.fields:
            where = f"register {reg.name}, field {f.name!r}"
            if not _NAME.fullmatch(f.name):
                raise ValueError(f"{where}: a field name must be letters, digits and single "
                                 "underscores, starting with a letter")
            if f.access not in ACCESS_KINDS:
                raise ValueError(f"{where}: access must be one of {', '.join(ACCESS_KINDS)}; "
                                 f"got {f.access!r}")
            if f.width < 1 or f.lsb < 0 or f.msb >= WORD_BITS:
                raise ValueError(f"{where}: bits {f.msb}:{f.lsb} must lie within "
                                 f"{WORD_BITS - 1}:0 with a width of at least 1")
            if used & f.mask:
                other = next(g.name for g in reg.fields if g.mask & f.mask and g is not f)
                raise ValueError(f"{where}: bits {f.bits} overlap field {other!r}")
            used |= f.mask
            if not 0 <= f.reset < 1 << f.width:
                raise ValueError(f"{where}: reset {f.reset} does not fit in {f.width} bits")
            if f.access == "W1P" and f.reset:
                raise ValueError(f"{where}: a W1P field reads 0, so its reset must be 0")
            port = port_name(reg, f)
            if port in seen_ports:
                raise ValueError(f"{where}: its port name {port} is also that of "
                                 f"{seen_ports[port]}: rename one")
            seen_ports[port] = f"register {reg.name}, field {f.name!r}"


def _packed(access: str, *specs, align: int = 8) -> tuple[Field, ...]:
    """Fields from (name, width, reset, doc) placed LSB first, each at the first multiple of
    `align` bits after the previous one (byte-aligned by default: easy to read in a driver)."""
    fields, lsb = [], 0
    for name, width, reset, doc in specs:
        fields.append(Field(name, lsb, width, access, reset, doc))
        lsb += -(-width // align) * align
    return tuple(fields)


DEFAULT_PROGRAM_WORDS = 1024
"""Instruction memory words of the core's map by default (rtl/core_top.py checks that
rtl.core's PROGRAM_WORDS is as many)."""
EXPONENT_BITS = 16
"""Bits of an exponent register (rtl/core_top.py checks that rtl.instruction's are as many)."""


def _width(limit: int) -> int:
    """Bits of a field that holds values up to `limit`."""
    return limit.bit_length()


CFG_DOCS = {
    "m": "output rows of the tensor (0 is refused)",
    "n": "output columns of the tensor (0 is refused)",
    "rule": "k rule: 0 narrow, k = max(0, B - 7); 1 gradient, k = B - m_u (0 when B <= m_u)",
    "m_u": "bits a gradient keeps (gradient rule only)",
    "band": "tile rows per band of the tile walk (0: the whole tensor)",
    "block": "tile columns per block of the tile walk (0: the whole tensor)",
}
CFG_REGISTERS = (("CFG_SHAPE", ("m", "n")), ("CFG_RULE", ("rule", "m_u")),
                 ("CFG_WALK", ("band", "block")))
"""The datapath's cfg fields (`perf.timing.TENSOR_CFG_FIELDS`), grouped into RW registers."""


def register_map(params: HardwareParams) -> RegisterMap:
    """The map of the control block for `params` (its hardware-parameter registers hold them)."""
    major, minor = MAP_VERSION
    regs = [
        Register("ID", 0x00, _packed("CONST", ("magic", 32, MAGIC, '"NITI" in ASCII')),
                 "identifies the niti-hw control block"),
        Register("VERSION", 0x04, _packed(
            "CONST", ("minor", 8, minor, "register map minor version (fields added)"),
            ("major", 8, major, "register map major version (offsets or fields moved)")),
            "register map version"),
        Register("CTRL", 0x08, (
            Field("start", 0, 1, "W1P", 0, "start a run with the CFG registers (ignored while "
                  "busy)"),
            Field("soft_reset", 1, 1, "W1P", 0, "abort: clear busy, done, error, CYCLES and a "
                  "pending cfg beat (wins over start)")),
            "control pulses"),
        Register("STATUS", 0x0C, (
            Field("busy", 0, 1, "RO", 0, "a run is in progress (from start until done)"),
            Field("done", 1, 1, "W1C", 0, "the last run finished (cleared by start)"),
            Field("error", 2, 1, "W1C", 0, "the core reported an error during the run (cleared "
                  "by start)")),
            "run status"),
        Register("CYCLES", 0x10, _packed("RO", ("count", WORD_BITS, 0,
                                                "clock cycles with busy set in the last run")),
                 "run length in cycles (restarts at 0 on start)"),
        Register("SCRATCH", 0x14, _packed("RW", ("value", WORD_BITS, 0, "free for software")),
                 "scratch word for bus tests"),
    ]
    for n, (name, members) in enumerate(CFG_REGISTERS):
        regs.append(Register(name, 0x20 + WORD_BYTES * n, _packed(
            "RW", *((f, TENSOR_CFG_FIELDS[f], 0, CFG_DOCS[f]) for f in members)),
            "tensor cfg, sent to the datapath on start"))
    regs += hardware_registers(params)
    return RegisterMap(tuple(regs))


def hardware_registers(params: HardwareParams) -> list[Register]:
    """HW_* at 0x40..0x54: the hardware parameters, in both maps."""
    dim, lanes, lfsr = _width(MAX_ARRAY_DIM), _width(MAX_LANES), _width(MAX_LFSR_LANES)
    return [
        Register("HW_ARRAY", 0x40, _packed(
            "CONST", ("rows", dim, params.rows, "systolic array rows"),
            ("cols", dim, params.cols, "systolic array columns")), "hardware parameters"),
        Register("HW_LANES", 0x44, _packed(
            "CONST", ("lanes", lanes, params.lanes, "int32 values per post-processing beat"),
            ("lfsr_lanes", lfsr, params.lfsr_lanes, "stochastic rounding LFSR lanes")),
            "hardware parameters"),
        Register("HW_NUMBERS", 0x48, _packed(
            "CONST", ("acc_bits", _width(MAX_ACC_BITS), params.acc_bits, "accumulator width"),
            ("round_mode", _width(len(ROUND_MODES) - 1), ROUND_MODES.index(params.round_mode),
             "rounding: " + ", ".join(f"{n} {mode}" for n, mode in enumerate(ROUND_MODES))),
            ("dim_bits", _width(WORD_BITS), TENSOR_DIM_BITS, "width of the cfg's m and n")),
            "hardware parameters"),
        Register("HW_TENSOR_WORDS", 0x4C, _packed(
            "CONST", ("words", _width(MAX_BUFFER_WORDS), params.tensor_buffer_words,
                      "int32 words of the tensor buffer: the largest m * n")),
            "hardware parameters"),
        Register("HW_MAX_K", 0x50, _packed(
            "CONST", ("max_k", _width(INT32_SAFE_K), params.max_k,
                      "largest K of a GEMM the accumulator holds")), "hardware parameters"),
        Register("HW_LFSR_SEED", 0x54, _packed(
            "CONST", ("seed", WORD_BITS, params.lfsr_seed, "seed of the rounding LFSRs")),
            "hardware parameters"),
    ]


EXP_DOC = ("exponent register EXP_INDEX.index (signed, sign-extend bit 15); a write sets it "
           "unless busy")


def core_register_map(params: HardwareParams, program_words: int) -> RegisterMap:
    """The map of the NITI core's top (`rtl.core_top.CoreTop`): run control and status, the
    run's settings, the exponent registers and the hardware parameters. Programs and tensors
    travel on the AXI4-Stream (`niti_hw.stream_frames`), not through these registers."""
    major, minor = CORE_MAP_VERSION
    modes = ", ".join(f"{n} {mode}" for n, mode in enumerate(ROUND_MODES))
    errors = ", ".join(f"{e.value} {e.name}" for e in Error)
    pc_bits = (program_words // INSTRUCTION_WORDS).bit_length()
    regs = [
        Register("ID", 0x00, _packed("CONST", ("magic", 32, MAGIC, '"NITI" in ASCII')),
                 "identifies the niti-hw control block"),
        Register("VERSION", 0x04, _packed(
            "CONST", ("minor", 8, minor, "core register map minor version (fields added)"),
            ("major", 8, major, "core register map major version (offsets or fields moved)"),
            ("core", 8, 1, "1: the NITI core's map (the tensor datapath's has no field here)")),
            "register map version"),
        Register("CTRL", 0x08, (
            Field("start", 0, 1, "W1P", 0, "run the program from word 0 (refused while busy or "
                  "while a stream frame is in flight: STATUS.refused)"),
            Field("stream_clear", 1, 1, "W1P", 0, "clear STREAM.error")),
            "control pulses"),
        Register("STATUS", 0x0C, (
            Field("busy", 0, 1, "RO", 0, "a program is running"),
            Field("done", 1, 1, "RO", 0, "the last run reached END (cleared by start)"),
            Field("error", 2, 1, "RO", 0, "the last run stopped at an instruction it cannot run "
                  "(CAUSE, PC; cleared by start)"),
            Field("refused", 3, 1, "W1C", 0, "a CTRL.start came while busy or while a frame was "
                  "in flight, and was ignored"),
            Field("loading", 4, 1, "RO", 0, "a stream frame is in flight (a start is refused)")),
            "run status"),
        Register("CAUSE", 0x10, _packed("RO", ("cause", 3, 0, "why the run stopped: 0 none, "
                                               "1 opcode, 2 place, 3 banks, 4 setting, "
                                               "5 program (rtl.instruction.Refusal)")),
                 "the refusal of the last run"),
        Register("PC", 0x14, _packed("RO", ("pc", pc_bits, 0, "the instruction running, or where "
                                            "the run stopped")), "program counter"),
        Register("CYCLES", 0x18, _packed("RO", ("count", WORD_BITS, 0,
                                                "clock cycles of the last run, from its start to "
                                                "done or error (saturating)")),
                 "run length in cycles (perf.timing.program_cycles)"),
        Register("STREAM", 0x1C, _packed("RO", ("error", ERROR_BITS, 0,
                                                f"first frame error since cleared: {errors}")),
                 "stream loader status (niti_hw.stream_frames)"),
        Register("CONFIG", 0x20, _packed(
            "RW", ("m_u", TENSOR_CFG_FIELDS["m_u"], 0,
                   "bits a gradient ROUND keeps (1..8; 0 refuses a gradient ROUND)"),
            *((f"mode_{kind}", _width(len(ROUND_MODES) - 1), ROUND_MODES.index(params.round_mode),
               f"rounding mode of {kind} ROUNDs: {modes}") for kind in TENSOR_KINDS), align=4),
            "the run's settings, held while it runs"),
        Register("EXP_INDEX", 0x24, _packed("RW", ("index", _width(EXPONENT_REGISTERS - 1), 0,
                                                   "the exponent register EXP_VALUE shows")),
                 "exponent register select"),
        Register("EXP_VALUE", 0x28, _packed("RWH", ("value", EXPONENT_BITS, 0, EXP_DOC)),
                 "exponent register"),
        *hardware_registers(params),
        Register("HW_PROGRAM", 0x58, _packed("CONST", ("words", _width(1 << 24), program_words,
                                                       "32-bit words of the instruction memory")),
                 "hardware parameters"),
        *(Register(f"HW_BANK_{bank.name}", 0x5C + WORD_BYTES * bank,
                   _packed("CONST", ("words", WORD_BITS, words,
                                     f"values of the {bank.name.lower()} bank")),
                   "hardware parameters") for bank, words in bank_words(params).items()),
    ]
    return RegisterMap(tuple(regs))
