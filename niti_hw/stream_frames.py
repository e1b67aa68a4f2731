"""AXI4-Stream frames that load the core's banks and read them back: the header's fields, the
operations, the error codes and the beat width, defined once.

Pure Python: the RTL (`niti_hw.rtl.stream_loader`) slices headers with `HEADER_FIELDS` and
reports `Error` codes; hosts and benches build frames with `write_frame` / `read_frame`.

A beat is one row of an int8 bank: `lanes` bytes, `lanes * 8` bits of TDATA, and one word of
every bank. A program places each tensor at a bank row (`niti_hw.program.memory.allocate`), so
every tensor starts at a beat, in the int32 tensor buffer too (a row of `lanes` int32 values is
four beats), and a beat is what the lanes-wide datapath takes per cycle; at the default 8 lanes
it is the 64-bit stream of common DMA engines. Addresses and lengths count beats.

A frame is a header of `header_beats(params)` beats (the fields packed from bit 0 upwards, beat
0 holding the lowest bits), then, for WRITE, `length` payload beats written at `base`,
`base + 1`, ...; TLAST marks the frame's last beat, TKEEP is all ones on every beat. READ is
the header alone; the loader answers with `length` beats on its master stream, TLAST on the
last. A frame breaking a rule sets the sticky error code (the first since it was cleared) and
is dropped from its first bad beat to its TLAST: nothing is written from that beat on, and no
beat of any frame is written outside the range its header names.

The checks, in order: a header beat with TKEEP not all ones (KEEP) or with TLAST before the
header's last beat (EARLY_LAST); the header's op (OP), bank (BANK), length 0 or a range past the
bank's end (RANGE); TLAST on a WRITE's header (EARLY_LAST) or missing on a READ's (LATE_LAST).
Then each payload beat: TKEEP (KEEP), TLAST before the `length`-th beat (EARLY_LAST), no TLAST on
it (LATE_LAST). The beat that shows an error is not written. A READ runs only from a good header.

On the NITI core (`niti_hw.rtl.core_top`) a fifth target, `PROGRAM`, is the instruction memory:
a beat holds `beat_bits // 32` program words (`Program.words()`, the first in the low bits) and it
is write-only (a READ of it is OP). A header that comes while the core runs a program is BUSY and
dropped: nothing is written to a core that is running.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from niti_hw.params import MAX_ACC_BITS, HardwareParams
from niti_hw.program.isa import Bank
from niti_hw.program.memory import bank_words

BYTE_BITS = 8


class Op(IntEnum):
    WRITE = 1
    READ = 2


class Error(IntEnum):
    """The sticky error register's codes, one per check above."""

    NONE = 0
    KEEP = 1
    EARLY_LAST = 2
    OP = 3
    BANK = 4
    RANGE = 5
    LATE_LAST = 6
    BUSY = 7
    """The core was running a program when the header came (a core top's frames only)."""


ERROR_BITS = max(Error).bit_length()

HEADER_FIELDS = (("op", 8), ("bank", 8), ("base", 24), ("length", 24))
"""(name, bits), packed from bit 0 upwards: byte-aligned for a host, with room for unknown ops
and banks, so that each has an error of its own."""
HEADER_BITS = sum(bits for _, bits in HEADER_FIELDS)


def beat_bits(params: HardwareParams) -> int:
    """TDATA width: one int8 bank row."""
    return params.lanes * BYTE_BITS


def header_beats(params: HardwareParams) -> int:
    return -(-HEADER_BITS // beat_bits(params))


def bank_depths(params: HardwareParams) -> dict[Bank, int]:
    """Words (beats) of each bank: the compiler's banks (`program.memory.bank_words`), a byte per
    int8 value and MAX_ACC_BITS per tensor-buffer word, in rows of `lanes` bytes."""
    depths = {}
    for bank, words in bank_words(params).items():
        size = words * (MAX_ACC_BITS // BYTE_BITS if bank == Bank.ACC else 1)
        if size % params.lanes:
            raise ValueError(f"the {bank.name} bank's {size} bytes are not whole beats of "
                             f"lanes={params.lanes} bytes")
        depths[bank] = size // params.lanes
    return depths


PROGRAM = len(Bank)
"""The core's instruction memory as a frame's target (after the four banks)."""
PROGRAM_WORD_BITS = 32


def program_depth(params: HardwareParams, program_words: int) -> int:
    """Beats of an instruction memory of `program_words` 32-bit words."""
    per_beat = beat_bits(params) // PROGRAM_WORD_BITS
    if per_beat < 1 or program_words % per_beat:
        raise ValueError(f"{program_words} program words are no whole number of "
                         f"{beat_bits(params)}-bit beats (the core's stream needs lanes >= 4)")
    return program_words // per_beat


def core_depths(params: HardwareParams, program_words: int) -> dict[int, int]:
    """Beats of each target of the core's frames: the four banks, then PROGRAM."""
    return {**bank_depths(params), PROGRAM: program_depth(params, program_words)}


def value_bits(bank: int) -> int:
    """Bits of a value of `bank` in a beat: int8 banks a byte, the tensor buffer MAX_ACC_BITS."""
    return MAX_ACC_BITS if bank == Bank.ACC else BYTE_BITS


def tensor_beats(params: HardwareParams, bank: int, values) -> list[int]:
    """Signed values of `bank` as beats (two's complement, the first value in the low bits; a
    partial last beat padded with zeros): how a host lays a tensor out for a WRITE frame."""
    bits, width = value_bits(bank), beat_bits(params)
    per = width // bits
    values = [int(v) for v in values] + [0] * (-len(values) % per)
    for v in values:
        if not -(1 << bits - 1) <= v < 1 << bits - 1:
            raise ValueError(f"value {v} does not fit the {bank} bank's {bits}-bit values")
    mask = (1 << bits) - 1
    return [sum((v & mask) << (bits * n) for n, v in enumerate(values[i:i + per]))
            for i in range(0, len(values), per)]


def beat_values(params: HardwareParams, bank: int, beats) -> list[int]:
    """The signed values in a READ's answer beats (`tensor_beats` undone)."""
    bits = value_bits(bank)
    per = beat_bits(params) // bits
    values = [(int(beat) >> (bits * n)) & ((1 << bits) - 1) for beat in beats for n in range(per)]
    return [v - (1 << bits) if v >> (bits - 1) else v for v in values]


def program_beats(params: HardwareParams, words) -> list[int]:
    """32-bit program words packed into beats, the first in the low bits (zeros pad the last)."""
    per_beat = beat_bits(params) // PROGRAM_WORD_BITS
    words = [int(word) for word in words] + [0] * (-len(words) % per_beat)
    return [sum(word << (PROGRAM_WORD_BITS * n) for n, word in enumerate(words[i:i + per_beat]))
            for i in range(0, len(words), per_beat)]


@dataclass(frozen=True)
class Header:
    """A frame's header; any field value that fits its bits (a bad one makes an error frame)."""

    op: int
    bank: int
    base: int
    length: int

    def __post_init__(self):
        for name, bits in HEADER_FIELDS:
            value = getattr(self, name)
            if not 0 <= value < 1 << bits:
                raise ValueError(f"header field {name} = {value} does not fit its {bits} bits")

    def encode(self) -> int:
        value, shift = 0, 0
        for name, bits in HEADER_FIELDS:
            value |= int(getattr(self, name)) << shift
            shift += bits
        return value

    @classmethod
    def decode(cls, value: int) -> "Header":
        fields, shift = {}, 0
        for name, bits in HEADER_FIELDS:
            fields[name] = (value >> shift) & ((1 << bits) - 1)
            shift += bits
        return cls(**fields)

    def beats(self, params: HardwareParams) -> list[int]:
        """The header as `header_beats(params)` TDATA words, lowest bits first."""
        width, value = beat_bits(params), self.encode()
        return [(value >> (width * n)) & ((1 << width) - 1) for n in range(header_beats(params))]


def target_name(bank: int) -> str:
    return "PROGRAM" if bank == PROGRAM else Bank(bank).name


def check_range(params: HardwareParams, bank: int, base: int, length: int,
                program_words: int | None = None) -> None:
    """Refuse what the loader would flag: an unknown bank, length 0, a range past the bank.
    With `program_words`, the core's targets (PROGRAM too)."""
    depths = bank_depths(params) if program_words is None else core_depths(params, program_words)
    if bank not in depths:
        raise ValueError(f"unknown bank {bank}; banks: "
                         f"{', '.join(f'{b} {target_name(b)}' for b in depths)}")
    depth = depths[bank]
    if length < 1 or base < 0 or base + length > depth:
        raise ValueError(f"beats {base}..{base + length - 1} are not in the {target_name(bank)} "
                         f"bank's {depth} beats (length >= 1)")


def write_frame(params: HardwareParams, bank: int, base: int, words,
                program_words: int | None = None) -> list[int]:
    """TDATA of a WRITE frame putting `words` (ints of `beat_bits` bits) at beat `base` (with
    `program_words`, of the core's targets)."""
    words = [int(word) for word in words]
    check_range(params, bank, base, len(words), program_words)
    width = beat_bits(params)
    for word in words:
        if not 0 <= word < 1 << width:
            raise ValueError(f"payload word {word:#x} does not fit the {width}-bit beat")
    return Header(Op.WRITE, bank, base, len(words)).beats(params) + words


def read_frame(params: HardwareParams, bank: int, base: int, length: int,
               program_words: int | None = None) -> list[int]:
    """TDATA of a READ frame asking for `length` beats from beat `base`."""
    check_range(params, bank, base, length, program_words)
    return Header(Op.READ, bank, base, length).beats(params)


def to_bytes(params: HardwareParams, words) -> bytes:
    """Beats as the little-endian bytes of an AXI4-Stream frame (byte n on TDATA[8n+7:8n])."""
    return b"".join(int(word).to_bytes(params.lanes, "little") for word in words)


def from_bytes(params: HardwareParams, data: bytes) -> list[int]:
    """The beats of whole-beat frame bytes."""
    if len(data) % params.lanes:
        raise ValueError(f"{len(data)} bytes are not whole beats of {params.lanes} bytes")
    return [int.from_bytes(data[n:n + params.lanes], "little")
            for n in range(0, len(data), params.lanes)]
