"""Where a program's tensors live: the on-chip banks sized by `HardwareParams`, and a first-fit
allocation of every tensor over its lifetime (first write to last read), so that tensors whose
lives do not overlap share words."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from niti_hw.params import HardwareParams
from niti_hw.program.isa import Bank

KIB = 1024

BANK_PARAMS = {Bank.ACT: "ifmap_sram_kib", Bank.ERR: "ofmap_sram_kib",
               Bank.WEIGHT: "filter_sram_kib", Bank.ACC: "tensor_buffer_words"}
"""The `HardwareParams` field that sizes each bank: KiB of int8 words, or int32 words."""


def bank_words(params: HardwareParams, weight_bits: int = 8) -> dict[Bank, int]:
    """Values each bank holds: a byte per int8 value, `ceil(weight_bits / 8)` bytes per weight
    (its int8 copies for the GEMMs, when the weights are wider, take a weight word each), an
    int32 word each in the tensor buffer."""
    weight_bytes = -(-weight_bits // 8)
    return {bank: getattr(params, field) * (1 if bank == Bank.ACC else KIB)
            // (weight_bytes if bank == Bank.WEIGHT else 1)
            for bank, field in BANK_PARAMS.items()}


def sized_for(params: HardwareParams, needed: dict[Bank, int],
              weight_bits: int = 8) -> HardwareParams:
    """`params` with each bank at least as large as `needed` values (whole KiB), others unchanged:
    memories sized for one program, as a simulation of a large model needs."""
    weight_bytes = -(-weight_bits // 8)
    changes = {}
    for bank, words in needed.items():
        field = BANK_PARAMS[bank]
        size = (words if bank == Bank.ACC else
                -(-words * (weight_bytes if bank == Bank.WEIGHT else 1) // KIB))
        if size > getattr(params, field):
            changes[field] = size
    return params.replace(**changes)


EXPONENTS = "exponents"
"""The space of exponent registers, allocated as a bank of one-word tensors."""


@dataclass(frozen=True)
class Lifetime:
    """A tensor's space (a bank, or EXPONENTS) and words, and the instructions it lives between:
    written by `first` (-1: loaded by the host) and read last by `last` (the program's length:
    read back by the host)."""

    space: Bank | str
    words: int
    first: int
    last: int


def allocate(lifetimes: dict[str, Lifetime], align: int = 1) -> tuple[dict[str, int], dict]:
    """(base word of each tensor, words each space needs). First fit in order of first write: a
    tensor takes the lowest gap of its space that no live tensor covers, at a multiple of
    `align` (a bank row of `lanes` values starts each tensor). A tensor read last by an
    instruction is still live while that instruction writes, so no instruction writes over its
    own operands."""
    bases: dict[str, int] = {}
    peaks: dict = defaultdict(int)
    live: dict = defaultdict(list)  # space -> [(base, end, last read)]
    for name, life in sorted(lifetimes.items(), key=lambda item: (item[1].first, item[0])):
        held = [span for span in live[life.space] if span[2] >= life.first]
        base = 0
        for start, end, _ in sorted(held):
            if base + life.words <= start:
                break
            base = max(base, -(-end // align) * align)
        held.append((base, base + life.words, life.last))
        live[life.space] = held
        bases[name] = base
        peaks[life.space] = max(peaks[life.space], base + life.words)
    return bases, dict(peaks)
