"""The fabric products (rtl/shift_add.py) against Python's `*`: exact narrow and signed products,
and products capped at 2**bits, at random and at the cap's edges."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

pytest.importorskip("amaranth", reason="needs the rtl extra: pip install 'niti-hw[rtl]'")

from amaranth.hdl import Module, Signal, signed  # noqa: E402
from amaranth.sim import Simulator  # noqa: E402

from niti_hw.rtl.shift_add import capped_product, shifted_sum, signed_shifted_sum  # noqa: E402


def evaluate(build, shapes, cases) -> list[int]:
    """The combinational `build(*inputs)` at each case of input values."""
    inputs = [Signal(shape) for shape in shapes]
    value = build(*inputs)
    out = Signal(value.shape())
    m = Module()
    m.d.comb += out.eq(value)
    seen = []

    async def bench(ctx):
        for case in cases:
            for signal, number in zip(inputs, case):
                ctx.set(signal, number)
            seen.append(ctx.get(out))

    sim = Simulator(m)
    sim.add_testbench(bench)
    sim.run()
    return seen


def edges(width: int, bits: int) -> list[int]:
    """Values around the cap's square root and the cap itself, within `width` bits."""
    near = {0, 1, 2, (1 << width) - 1}
    for power in (bits // 2, (bits + 1) // 2, bits, bits + 1):
        near |= {(1 << power) + d for d in (-1, 0, 1)}
    return sorted(v for v in near if 0 <= v < 1 << width)


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 24), st.integers(1, 24), st.integers(2, 20), st.randoms())
def test_capped_products_are_the_product_up_to_the_cap(wa, wb, bits, rng):
    values = [(rng.getrandbits(wa), rng.getrandbits(wb)) for _ in range(40)]
    values += [(a, b) for a in edges(wa, bits) for b in edges(wb, bits)]
    got = evaluate(lambda a, b: capped_product(a, b, bits), (wa, wb), values)
    assert got == [min(a * b, 1 << bits) for a, b in values]


@pytest.mark.parametrize("bits", [15, 17])
def test_capped_products_whose_terms_carry_past_the_cap(bits):
    """No shifted copy reaches 2**bits, only their sum: (2**h + 1) * (2**(bits - h) - 1) and
    its neighbours, each factor the narrow one in turn."""
    h = bits // 2
    values = [(a, b) for a in range((1 << h) - 2, (1 << h) + 3)
              for b in range((1 << (bits - h)) - 3, (1 << (bits - h)) + 3)]
    values += [(b, a) for a, b in values]
    got = evaluate(lambda a, b: capped_product(a, b, bits), (24, 24), values)
    assert got == [min(a * b, 1 << bits) for a, b in values]


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 16), st.integers(1, 6), st.randoms())
def test_shifted_sums_are_exact_products(wa, wb, rng):
    values = [(rng.getrandbits(wa), rng.getrandbits(wb)) for _ in range(60)]
    values += [((1 << wa) - 1, (1 << wb) - 1), (0, (1 << wb) - 1)]
    assert evaluate(shifted_sum, (wa, wb), values) == [a * b for a, b in values]


def test_signed_shifted_sums_are_every_int8_product():
    values = [(a, b) for a in range(-128, 128) for b in range(-128, 128)]
    got = evaluate(signed_shifted_sum, (signed(8), signed(8)), values)
    assert got == [a * b for a, b in values]
