"""Host side of the stream loader for the benches: beats, random frames of every kind (good and
each way of breaking `niti_hw.stream_frames`' rules), and a model of what the loader must do
with them (the banks, each frame's error code, the READ answers).

The model follows the rules as stream_frames states them, one frame at a time; the RTL works a
beat at a time. Each random frame also names the error it was built to raise, a third opinion.
"""

from __future__ import annotations

import random
from typing import NamedTuple

from niti_hw.params import HardwareParams
from niti_hw.program.isa import Bank
from niti_hw.stream_frames import (HEADER_FIELDS, Error, Header, Op, bank_depths, beat_bits,
                                   header_beats, read_frame, write_frame)


class Beat(NamedTuple):
    data: int
    keep: int
    last: int


def full_keep(params: HardwareParams) -> int:
    return (1 << params.lanes) - 1


def as_beats(params: HardwareParams, words, last: bool = True) -> list[Beat]:
    """Whole beats, TLAST on the last one when `last`."""
    words = list(words)
    return [Beat(word, full_keep(params), int(last and n == len(words) - 1))
            for n, word in enumerate(words)]


KINDS = ("write", "read", "op", "bank", "range", "keep", "early_last", "late_last",
         "write_header_last", "read_no_last", "header_early_last")
"""Frame kinds: two good ones, then one per way of breaking a rule."""
KIND_ERRORS = {"write": Error.NONE, "read": Error.NONE, "op": Error.OP, "bank": Error.BANK,
               "range": Error.RANGE, "keep": Error.KEEP, "early_last": Error.EARLY_LAST,
               "late_last": Error.LATE_LAST, "write_header_last": Error.EARLY_LAST,
               "read_no_last": Error.LATE_LAST, "header_early_last": Error.EARLY_LAST}


def header_of(params: HardwareParams, beats) -> Header:
    """The header in a frame's first beats."""
    width = beat_bits(params)
    return Header.decode(sum(b.data << (width * n)
                             for n, b in enumerate(beats[:header_beats(params)])))


def kinds(params: HardwareParams) -> tuple[str, ...]:
    """The kinds a loader of `params` can be sent: TLAST inside the header needs two beats."""
    return tuple(k for k in KINDS if k != "header_early_last" or header_beats(params) > 1)


def random_place(params: HardwareParams, rng: random.Random, longest: int):
    """(bank, base, length) inside a bank; often a short one at the bank's start or end."""
    bank = rng.choice(list(Bank))
    depth = bank_depths(params)[bank]
    length = rng.randint(1, min(depth, rng.choice([2, 8, longest])))
    base = rng.choice([0, depth - length, rng.randint(0, depth - length)])
    return bank, base, length


def random_frame(params: HardwareParams, kind: str, rng: random.Random,
                 longest: int = 64) -> list[Beat]:
    """One frame of `kind` (KINDS) with random place, data and breakage."""
    width, beats = beat_bits(params), header_beats(params)
    words = lambda n: [rng.getrandbits(width) for _ in range(n)]  # noqa: E731
    bank, base, length = random_place(params, rng, longest)
    if kind == "write":
        return as_beats(params, write_frame(params, bank, base, words(length)))
    if kind == "read":
        return as_beats(params, read_frame(params, bank, base, length))
    if kind in ("op", "bank", "range"):
        fields = {"op": Op.WRITE, "bank": bank, "base": base, "length": length}
        limits = dict(HEADER_FIELDS)
        if kind == "op":
            fields["op"] = rng.choice([n for n in range(1 << limits["op"]) if n not in set(Op)])
        elif kind == "bank":
            fields["bank"] = rng.randrange(len(Bank), 1 << limits["bank"])
        else:  # length 0, one word past the end, longer than the bank, base past the end,
            # a base or length in range but for one high bit, base + length past the fields
            depth, top = bank_depths(params)[bank], (1 << limits["base"]) - 1
            high = 1 << rng.randrange(depth.bit_length(), limits["base"])
            fields["base"], fields["length"] = rng.choice([
                (base, 0), (base, depth + 1 - base), (0, rng.randrange(depth + 1, 2 * depth)),
                (rng.randrange(depth, top), 1), (high + base, length), (base, high + length),
                (top, (1 << limits["length"]) - 1)])
        return as_beats(params, Header(**fields).beats(params) + words(rng.randrange(0, 4)))
    if kind == "keep":
        frame = as_beats(params, write_frame(params, bank, base, words(length)))
        n = rng.randrange(len(frame))
        keep = full_keep(params) & ~(1 << rng.randrange(params.lanes))
        return frame[:n] + [frame[n]._replace(keep=keep)] + frame[n + 1:]
    if kind == "early_last":
        length = max(length, 2)
        base = min(base, bank_depths(params)[bank] - length)
        frame = write_frame(params, bank, base, words(length))
        return as_beats(params, frame[:beats + rng.randrange(1, length)])
    if kind == "late_last":
        return as_beats(params, write_frame(params, bank, base, words(length))
                        + words(rng.randint(1, 3)))
    if kind == "write_header_last":
        return as_beats(params, Header(Op.WRITE, bank, base, length).beats(params))
    if kind == "read_no_last":
        return as_beats(params, read_frame(params, bank, base, length) + words(rng.randint(1, 3)))
    if kind == "header_early_last":
        return as_beats(params, Header(Op.WRITE, bank, base, length).beats(params)
                        [:rng.randrange(1, beats)])
    raise ValueError(f"unknown frame kind {kind!r}; kinds: {', '.join(KINDS)}")


class LoaderModel:
    """The banks, the sticky error, and the READ answers after frames of beats."""

    def __init__(self, params: HardwareParams):
        self.params = params
        self.banks = {bank: [0] * depth for bank, depth in bank_depths(params).items()}
        self.error = Error.NONE
        self.answers: list[list[int]] = []

    def clear(self) -> None:
        self.error = Error.NONE

    def frame(self, beats: list[Beat]) -> Error:
        """Take one frame (its last beat, and only it, has TLAST); returns its error code."""
        if [b.last for b in beats] != [0] * (len(beats) - 1) + [1]:
            raise ValueError("a frame has TLAST on its last beat only")
        code = self._frame(beats)
        if self.error == Error.NONE:
            self.error = code
        return code

    def _frame(self, beats: list[Beat]) -> Error:
        full, head = full_keep(self.params), header_beats(self.params)
        if any(b.keep != full for b in beats[:head]):
            return Error.KEEP
        if len(beats) < head:
            return Error.EARLY_LAST
        header = header_of(self.params, beats)
        depth = bank_depths(self.params).get(header.bank, 0)
        payload = beats[head:]
        if header.op not in set(Op):
            return Error.OP
        if header.bank not in set(Bank):
            return Error.BANK
        if header.length == 0 or header.base + header.length > depth:
            return Error.RANGE
        if header.op == Op.READ:
            if payload:
                return Error.LATE_LAST
            bank = self.banks[Bank(header.bank)]
            self.answers.append(bank[header.base:header.base + header.length])
            return Error.NONE
        if not payload:
            return Error.EARLY_LAST
        for n, beat in enumerate(payload):
            if beat.keep != full:
                return Error.KEEP
            if n == header.length - 1 and not beat.last:
                return Error.LATE_LAST
            if beat.last and n < header.length - 1:
                return Error.EARLY_LAST
            self.banks[Bank(header.bank)][header.base + n] = beat.data
        return Error.NONE
