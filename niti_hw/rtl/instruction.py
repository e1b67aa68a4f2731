"""The instruction set in Amaranth: the decoder's layouts, built from `niti_hw.program.isa`'s field
tables (never retyped), the core's run settings, and why a run stops with an error."""

from __future__ import annotations

from amaranth.hdl import signed, unsigned
from amaranth.lib import data, enum

from niti_hw.golden.tensor import TENSOR_KINDS
from niti_hw.params import ROUND_MODES
from niti_hw.perf.timing import TENSOR_CFG_FIELDS
from niti_hw.program.isa import GEOMETRY_FIELDS, INSTRUCTION_WORDS, TENSOR_FIELDS, WORD_BITS

INSTRUCTION_BITS = INSTRUCTION_WORDS * WORD_BITS
EXPONENT_BITS = 16
"""Width of an exponent register (two's complement): exponents of a training step stay within a
few dozen of zero; an addition beyond +-2**15 wraps (the reference machine's are unbounded)."""
MODE_BITS = (len(ROUND_MODES) - 1).bit_length()


def _fields(table) -> data.StructLayout:
    """Fields from bit 0 upwards in table order, as `isa.encode` packs them."""
    return data.StructLayout({name: unsigned(bits) for name, bits in table})


def tensor_layout() -> data.StructLayout:
    """Every instruction but the geometry ones (`isa.TENSOR_FIELDS`)."""
    return _fields(TENSOR_FIELDS)


def geometry_layout() -> data.StructLayout:
    """CONV_GEOMETRY and POOL_GEOMETRY (`isa.GEOMETRY_FIELDS`)."""
    return _fields(GEOMETRY_FIELDS)


def config_layout() -> data.StructLayout:
    """A run's settings, held by the host: m_u of gradient rounds (1..8) and the rounding mode of
    each tensor kind (golden `TENSOR_KINDS` order; a mode is its index in `ROUND_MODES`, as in the
    CFG register)."""
    return data.StructLayout({
        "m_u": unsigned(TENSOR_CFG_FIELDS["m_u"]),
        "modes": data.ArrayLayout(unsigned(MODE_BITS), len(TENSOR_KINDS)),
    })


EXPONENT = signed(EXPONENT_BITS)


class Refusal(enum.Enum, shape=3):
    """Why the sequencer stopped a run with `error` (held with the instruction's pc until the next
    start); the reference machine raises on the same instructions, or has no RTL engine yet."""

    NONE = 0
    OPCODE = 1
    """No opcode."""
    PLACE = 2
    """A tensor base that is not a bank row (a multiple of `lanes`), or a tensor past its bank
    (a LOSS's logits and errors are m x n values, its labels m; a GEMM's operands at any word, by
    their real extents; POOL's, POOL_BACKWARD's and COL2IM's tensors as long as their geometry
    makes them), or a result of those three that overlaps one of their operands (or POOL's values
    its winners)."""
    BANKS = 3
    """An int8 operand in the int32 bank, a RELU's or POOL's two results in one bank, a LOSS's
    errors over its logits or labels, wide weights outside the weight bank or their int8 copies
    over them, a GEMM's result outside the int32 bank, or a COL2IM from or to an int8 bank."""
    SETTING = 4
    """A ROUND's or LOSS's mode code that is no mode, m_u outside 1..8 for a gradient ROUND, an
    UPDATE whose weight bits are not the core's, a LOSS of no samples or of classes outside
    1..LOSS_CLASSES, a GEMM with an empty dimension, K past the accumulator (`max_k`) or an
    im2col A not of the geometry's shape, a geometry the machine's golden layer would not walk
    as the engines do (a zero field but padding, an output size not golden's; for pooling a
    padding, a non-square kernel or one above `max_pool.MAX_KERNEL`), a POOL whose `m` is not its
    input's words or a COL2IM whose `m` x `n` is not the geometry's windows x KH*KW*C."""
    PROGRAM = 5
    """The next instruction would run past the instruction memory (no END)."""
