"""The sequencer's instruction set: every instruction's fields and their bit layout, defined once.

A program is the lowering of one training step (`niti_hw.perf.lowering`), one instruction per
lowered operation, plus geometry instructions that set the convolution and pooling shapes the
address generators walk. The compiler writes instructions, the reference machine
(`niti_hw.program.machine`) executes them, and an RTL decoder is to slice the same words by
the same field tables.

Each instruction is `INSTRUCTION_WORDS` 32-bit words, fields packed from bit 0 upwards in table
order. Tensor operands name a bank and a word address in it; `m`, `n`, `k` are a GEMM's shape
(C[m x n] = A[m x k] @ B[k x n]) or a streaming op's element count (`m`) and row length (`n`).
Exponents live in a register file: an instruction names the registers of its operands and
result, and the machine adds what the operation adds (a GEMM: the operands'; a narrowing: k).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from niti_hw.golden.tensor import TENSOR_KINDS

WORD_BITS = 32


class Opcode(IntEnum):
    END = 0
    CONV_GEOMETRY = 1
    POOL_GEOMETRY = 2
    GEMM = 3
    COL2IM = 4
    BITWIDTH = 5
    ROUND = 6
    RELU = 7
    RELU_BACKWARD = 8
    POOL = 9
    POOL_BACKWARD = 10
    LOSS = 11
    UPDATE = 12


LOWERED_OPCODES = {
    "gemm": Opcode.GEMM, "col2im": Opcode.COL2IM, "bitwidth": Opcode.BITWIDTH,
    "round": Opcode.ROUND, "relu": Opcode.RELU, "relu_backward": Opcode.RELU_BACKWARD,
    "pool": Opcode.POOL, "pool_backward": Opcode.POOL_BACKWARD, "loss_gradient": Opcode.LOSS,
    "weight_update": Opcode.UPDATE,
}
"""The instruction each operation of `niti_hw.perf.lowering` becomes."""


class Bank(IntEnum):
    """On-chip memories: int8 activations (the ifmap SRAM), int8 errors, masks, pool winners
    and labels (the ofmap SRAM), weights (the filter SRAM), int32 values (the tensor buffer)."""

    ACT = 0
    ERR = 1
    WEIGHT = 2
    ACC = 3


class Layout(IntEnum):
    """How a GEMM operand is read from its bank.

    ROWS: stored row-major in the shape the GEMM takes; TRANSPOSED: stored row-major as the
    transpose (a weight matrix read as W^T, activations read as x^T); IM2COL: the im2col columns
    of an NHWC tensor, addressed by the current convolution geometry (A of a forward pass);
    IM2COL_TRANSPOSED: their transpose (A of a convolution's weight gradient).
    """

    ROWS = 0
    TRANSPOSED = 1
    IM2COL = 2
    IM2COL_TRANSPOSED = 3


Kind = IntEnum("Kind", {kind.upper(): code for code, kind in enumerate(TENSOR_KINDS)})
Kind.__doc__ = "Which rounding mode register a ROUND or LOSS uses: golden's `TENSOR_KINDS`."


KEEP_M_U = 0
"""`keep` of a gradient ROUND: keep the m_u bits of the run's m_u register (SPEC 3.2)."""

TENSOR_FIELDS = (
    ("opcode", 4), ("a_layout", 2), ("b_layout", 2), ("kind", 2), ("keep", 4),
    ("a_bank", 2), ("a_base", 24), ("b_bank", 2), ("b_base", 24),
    ("dst_bank", 2), ("dst_base", 24), ("aux_bank", 2), ("aux_base", 24),
    ("m", 24), ("n", 24), ("k", 24),
    ("a_exp", 6), ("b_exp", 6), ("dst_exp", 6),
)
"""Fields of every instruction but the geometry ones: (name, bits)."""

GEOMETRY_FIELDS = (
    ("opcode", 4), ("batch", 16), ("height", 12), ("width", 12), ("channels", 12),
    ("kernel_h", 4), ("kernel_w", 4), ("stride", 4), ("padding", 4),
    ("out_height", 12), ("out_width", 12),
)
"""Fields of CONV_GEOMETRY and POOL_GEOMETRY: an NHWC input, a kernel, and the output size
(the compiler's division, so the address generators need none)."""

GEOMETRY_OPCODES = (Opcode.CONV_GEOMETRY, Opcode.POOL_GEOMETRY)
EXPONENT_REGISTERS = 1 << dict(TENSOR_FIELDS)["a_exp"]
INSTRUCTION_WORDS = max(-(-sum(bits for _, bits in table) // WORD_BITS)
                        for table in (TENSOR_FIELDS, GEOMETRY_FIELDS))


@dataclass(frozen=True)
class Instruction:
    """A tensor instruction; unused fields stay 0."""

    opcode: Opcode
    a_layout: int = 0
    b_layout: int = 0
    kind: int = 0
    keep: int = 0
    a_bank: int = 0
    a_base: int = 0
    b_bank: int = 0
    b_base: int = 0
    dst_bank: int = 0
    dst_base: int = 0
    aux_bank: int = 0
    aux_base: int = 0
    m: int = 0
    n: int = 0
    k: int = 0
    a_exp: int = 0
    b_exp: int = 0
    dst_exp: int = 0

    def __post_init__(self):
        if self.opcode in GEOMETRY_OPCODES:
            raise ValueError(f"{self.opcode.name} is a Geometry, not an Instruction")
        _check_fields(self, TENSOR_FIELDS)


@dataclass(frozen=True)
class Geometry:
    """CONV_GEOMETRY or POOL_GEOMETRY: the shape later IM2COL reads, COL2IM and pooling walk."""

    opcode: Opcode
    batch: int
    height: int
    width: int
    channels: int
    kernel_h: int
    kernel_w: int
    stride: int
    padding: int
    out_height: int
    out_width: int

    def __post_init__(self):
        if self.opcode not in GEOMETRY_OPCODES:
            raise ValueError(f"a Geometry's opcode is one of {[o.name for o in GEOMETRY_OPCODES]}")
        _check_fields(self, GEOMETRY_FIELDS)

    @property
    def input_shape(self) -> tuple[int, int, int, int]:
        return (self.batch, self.height, self.width, self.channels)

    @property
    def depth(self) -> int:
        """Columns of an im2col row: KH * KW * C."""
        return self.kernel_h * self.kernel_w * self.channels

    @property
    def windows(self) -> int:
        """Rows of the im2col matrix (or pooling windows per channel): N * OH * OW."""
        return self.batch * self.out_height * self.out_width


def _check_fields(item, table) -> None:
    for name, bits in table:
        value = int(getattr(item, name))
        if not 0 <= value < 1 << bits:
            raise ValueError(f"{item.opcode.name}: field {name} = {value} does not fit its {bits} "
                             f"bits (0..{(1 << bits) - 1}); a smaller batch or layer fits")


def encode(item: Instruction | Geometry) -> list[int]:
    """The instruction's `INSTRUCTION_WORDS` 32-bit words, fields from bit 0 upwards."""
    table = GEOMETRY_FIELDS if isinstance(item, Geometry) else TENSOR_FIELDS
    value, shift = 0, 0
    for name, bits in table:
        value |= int(getattr(item, name)) << shift
        shift += bits
    return [(value >> (WORD_BITS * i)) & ((1 << WORD_BITS) - 1) for i in range(INSTRUCTION_WORDS)]


def decode(words) -> Instruction | Geometry:
    """The instruction `encode` wrote; an unknown opcode is refused."""
    words = list(words)
    if len(words) != INSTRUCTION_WORDS:
        raise ValueError(f"an instruction is {INSTRUCTION_WORDS} words; got {len(words)}")
    value = sum(int(word) << (WORD_BITS * i) for i, word in enumerate(words))
    code = value & ((1 << TENSOR_FIELDS[0][1]) - 1)
    try:
        opcode = Opcode(code)
    except ValueError:
        raise ValueError(f"unknown opcode {code}; known: "
                         f"{', '.join(f'{o.value} {o.name}' for o in Opcode)}") from None
    cls, table = ((Geometry, GEOMETRY_FIELDS) if opcode in GEOMETRY_OPCODES
                  else (Instruction, TENSOR_FIELDS))
    values, shift = {}, 0
    for name, bits in table:
        values[name] = (value >> shift) & ((1 << bits) - 1)
        shift += bits
    values["opcode"] = opcode
    return cls(**values)
