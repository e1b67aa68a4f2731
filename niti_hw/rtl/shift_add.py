"""Products by shift and add in the fabric, no `*`: yosys gives any product of two signals a
MULT18X18D of its own, and the core's are needed by the array. Narrow factors, or products that
only need to be exact below a bound (a bank's size, past which the sequencer refuses a tensor
anyway)."""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Mux, Value


def tree_sum(terms) -> Value:
    """The terms added in a balanced tree (exact, each adder a bit wider): log2(len(terms))
    adders deep, where Python's `sum` chains one after another and yosys does not rebalance."""
    level = [Value.cast(term) for term in terms] or [Const(0)]
    while len(level) > 1:
        level = [level[n] + level[n + 1] if n + 1 < len(level) else level[n]
                 for n in range(0, len(level), 2)]
    return level[0]


PARTIAL_TERMS = 4
"""Terms in each of `partial_sums`' sums: two adder levels, a pipeline stage's worth."""


def partial_sums(terms) -> list:
    """The terms added in groups of PARTIAL_TERMS: a product's first pipeline stage, whose
    registers `capped_total` (or `tree_sum`) adds up in the next."""
    return [tree_sum(terms[n:n + PARTIAL_TERMS]) for n in range(0, len(terms), PARTIAL_TERMS)]


def capped_product(a, b, bits: int) -> Value:
    """min(a * b, 2**bits), unsigned, `bits + 1` bits wide.

    A product below 2**bits has a factor below 2**ceil(bits / 2), so that one (the narrower
    factor, or whichever is small at run time) is the shift-and-add's multiplier: ceil(bits / 2)
    adders of `bits + 1` bits at most; bits shifted past `bits` only raise the cap."""
    return capped_total(*capped_terms(a, b, bits), bits)


def capped_total(terms, over, bits: int) -> Value:
    """min(sum of `terms`, 2**bits), or 2**bits where `over`: `capped_product`'s last half, so a
    pipeline may register partial sums of `capped_terms` between the two."""
    total = tree_sum(terms)
    return Mux(over | total[bits:].any(), 1 << bits, total[:bits])


def capped_factors(a, b, bits: int) -> tuple[Value, Value, Value]:
    """`capped_terms`' first step, a pipeline stage of its own where needed: (wide, narrow, over),
    the factors ordered so that `narrow` (ceil(bits / 2) bits at most) multiplies, and whether both
    are too wide for the product to lie below 2**bits."""
    a, b = Value.cast(a), Value.cast(b)
    if len(a) < len(b):
        a, b = b, a
    half = (bits + 1) // 2
    over = Const(0)
    if len(b) > half:  # both may be wide: the small one at run time multiplies
        a_small, b_small = ~a[half:].any(), ~b[half:].any()
        over = ~a_small & ~b_small  # both >= 2**half: the product is >= 2**bits
        a, b = Mux(a_small, b, a), Mux(a_small, a[:half], b[:half])
    return a, b, over


def capped_terms(a, b, bits: int) -> tuple[list, Value]:
    """`capped_product`'s shifted terms (each below 2**bits) and whether the product is past
    2**bits for a reason the terms do not show."""
    a, b, over = capped_factors(a, b, bits)
    if len(a) > bits:
        over = over | (a[bits:].any() & b.any())
        a = a[:bits]
    terms = []
    for i in range(len(b)):
        shifted = Cat(Const(0, i), a)  # a << i
        over = over | (b[i] & shifted[bits:].any())
        terms.append(Mux(b[i], shifted[:bits], 0))
    return terms, over


def shifted_terms(a, b) -> list:
    """The len(b) shifted copies of `a` whose sum is a * b (unsigned `b`)."""
    a, b = Value.cast(a), Value.cast(b)
    return [Mux(b[i], a << i, 0) for i in range(len(b))]


def shifted_sum(a, b) -> Value:
    """a * b exactly, for a narrow unsigned `b`: len(b) shifted copies of `a` added."""
    return tree_sum(shifted_terms(a, b))


def signed_shifted_sum(a, b) -> Value:
    """a * b exactly for signed `b` (two's complement: its top bit weighs -2**(len(b) - 1))."""
    a, b = Value.cast(a), Value.cast(b)
    top = len(b) - 1
    return shifted_sum(a, b[:top]) - Mux(b[top], a << top, 0)
