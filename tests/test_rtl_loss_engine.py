"""Fast tier: the core's LOSS engine and its UPDATE of wide weights in `amaranth.sim`, against the
reference machine after every instruction (banks, exponents, B, LFSR states), with exact cycles.

LOSS: every rounding mode, labels at every class, ties and extreme logits, both branches of the
gradient (s above and at or below -7), samples starting at every lane; a ROUND and a second LOSS
behind it in the same mode, so the LFSR lanes must have been carried through the first as golden
carries them. UPDATE at 8, 12, 16 and 24 bits, weights at +-limit against g = +-127, the int8
copies of wide weights. Refusals of either that the machine would not run as the core does.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from niti_hw.golden import RoundingPolicy
from niti_hw.golden.tensor import TENSOR_KINDS
from niti_hw.params import ROUND_MODES
from niti_hw.perf.timing import engine_cycles, loss_cycles
from niti_hw.program.compiler import LABELS as LABELS_TENSOR
from niti_hw.program.compiler import compile_step, program_params
from niti_hw.program.isa import EXPONENT_REGISTERS, Bank, Instruction, Kind, Opcode
from niti_hw.program.machine import Machine
from niti_hw.program.memory import bank_words

pytest.importorskip("amaranth", reason="needs the rtl extra: pip install 'niti-hw[rtl]'")

from test_rtl_core import P, Bench, assert_cycles, program_words  # noqa: E402

from niti_hw.rtl.instruction import Refusal  # noqa: E402
from niti_hw.rtl.loss_engine import LOSS_CLASSES  # noqa: E402

WEIGHT_BITS = (8, 12, 16, 24)


def params_for(weight_bits: int):
    """P, with 3 KiB of weights for 24-bit ones (1 KiB is no whole number of 3-byte words)."""
    return P.replace(filter_sram_kib=3) if weight_bits == 24 else P


@functools.cache
def bench(weight_bits: int = 8) -> Bench:
    """One elaborated core per weight width, shared by the tests (reset before every job)."""
    return Bench(params_for(weight_bits), weight_bits=weight_bits)


def contents_for(rng: np.random.Generator, weight_bits: int, p=None) -> dict[Bank, np.ndarray]:
    """int8 banks in [-127, 127], int32 values of any width, weights within their width."""
    words = bank_words(p or params_for(weight_bits), weight_bits)
    limit = (1 << weight_bits - 1) - 1
    return {Bank.ACT: rng.integers(-127, 128, words[Bank.ACT]),
            Bank.ERR: rng.integers(-127, 128, words[Bank.ERR]),
            Bank.WEIGHT: rng.integers(-limit, limit + 1, words[Bank.WEIGHT]),
            Bank.ACC: rng.integers(-2**31, 2**31, words[Bank.ACC])}


def run(items, contents, exponents, modes, weight_bits: int = 8, m_u: int = 3,
        unit: Bench | None = None) -> dict:
    """`items` on the core (`unit`, or the shared one of `weight_bits`) and on a machine from the
    same banks and exponents, compared after every instruction; the run record with the core's
    outcome and the machine."""
    unit = unit or bench(weight_bits)
    named = [mode if isinstance(mode, str) else "pseudo" for mode in modes]  # refused codes
    machine = Machine(unit.p, RoundingPolicy(*named, seed=P.lfsr_seed, n_lanes=P.lfsr_lanes),
                      m_u, weight_bits)
    for bank, values in contents.items():
        machine.banks[bank][:] = values
    machine.exponents[:] = exponents
    record = {"machine": machine}

    async def job(ctx):
        core = unit.core
        await unit.load(ctx, contents, exponents, program_words(items))
        unit.check(ctx, machine, "after loading")
        record.update(await unit.run(ctx, items, machine, m_u, modes))
        record.update(done=ctx.get(core.done), error=ctx.get(core.error),
                      cause=ctx.get(core.cause))
        unit.check(ctx, machine, "at the end")

    unit.execute(job)
    return record


# ---------------------------------------------------------------------------------------------
# LOSS
# ---------------------------------------------------------------------------------------------

LOGITS, LABELS, ERRORS, ERRORS2 = 0, 0, 400, 600  # ACT, ERR, ERR, ERR bases
ACT_WORDS, ERR_WORDS = bank_words(P)[Bank.ACT], bank_words(P)[Bank.ERR]


def loss_contents(rng, samples: int, classes: int) -> dict[Bank, np.ndarray]:
    """Random banks with logits at ACT 0 whose rows are: all equal (ties), +-127 only, one
    +127 among -127s, then random; labels at ERR 0 running through every class."""
    contents = contents_for(rng, 8)
    a = rng.integers(-127, 128, (samples, classes))
    a[0] = rng.integers(-127, 128)
    if samples > 1:
        a[1] = rng.choice([-127, 127], classes)
    if samples > 2:
        a[2] = -127
        a[2, rng.integers(classes)] = 127
    contents[Bank.ACT][LOGITS:LOGITS + a.size] = a.ravel()
    contents[Bank.ERR][LABELS:LABELS + samples] = np.arange(samples) % classes
    return contents


def loss_program(samples: int, classes: int, exponent_a: int) -> list:
    """LOSS, a ROUND (error kind, keep 4) of an int32 tensor, a second LOSS of the same logits
    from another exponent register into other rows, END."""
    loss = dict(opcode=Opcode.LOSS, a_bank=Bank.ACT, a_base=LOGITS, b_bank=Bank.ERR,
                b_base=LABELS, m=samples, n=classes, kind=Kind.LOSS)
    return [Instruction(**loss, dst_bank=Bank.ERR, dst_base=ERRORS, a_exp=exponent_a, dst_exp=5),
            Instruction(Opcode.BITWIDTH, a_bank=Bank.ACC, a_base=0, m=30),
            Instruction(Opcode.ROUND, a_bank=Bank.ACC, a_base=0, m=30, keep=4, kind=Kind.ERROR,
                        dst_bank=Bank.ACT, dst_base=800, a_exp=3, dst_exp=4),
            Instruction(**loss, dst_bank=Bank.ERR, dst_base=ERRORS2, a_exp=2, dst_exp=6),
            Instruction(Opcode.END)]


@pytest.mark.parametrize("mode", ROUND_MODES)
@pytest.mark.parametrize("samples, classes, s", [(10, 10, -3), (7, 3, -7), (5, 5, 14)])
def test_loss_runs_as_the_machine_runs_it(mode, samples, classes, s):
    """Errors, exp[dst] and the LFSR states equal the machine's after each LOSS and after the
    ROUND between them; s in the base-2 branch, at -7 (Taylor) and high; the second LOSS in
    the other branch (s = -40). Samples start at lanes 0, 1, 2, 3 (5 classes) and several
    share a bank row (3 classes)."""
    rng = np.random.default_rng(samples * 31 + classes)
    contents = loss_contents(rng, samples, classes)
    exponents = rng.integers(-40, 41, EXPONENT_REGISTERS)
    exponents[[1, 2]] = [s, -40]
    items = loss_program(samples, classes, 1)
    modes = [mode] * len(TENSOR_KINDS)
    record = run(items, contents, exponents, modes)
    machine = record["machine"]
    assert record["done"] and record["pc"] == len(items) - 1
    assert machine.exponents[5] == machine.exponents[6] == -7
    assert machine.banks[Bank.ERR][ERRORS:ERRORS + samples * classes].any()
    assert_cycles(record, items)


def test_the_loss_uses_the_loss_kind_mode_whatever_the_others():
    """Stochastic loss among pseudo and nearest kinds (the instruction's kind field says another
    kind): only the loss draws from the lanes, which must have stepped."""
    rng = np.random.default_rng(5)
    contents = loss_contents(rng, 4, 10)
    exponents = rng.integers(-40, 41, EXPONENT_REGISTERS)
    exponents[1] = 0
    item = Instruction(Opcode.LOSS, a_bank=Bank.ACT, a_base=LOGITS, b_bank=Bank.ERR,
                       b_base=LABELS, m=4, n=10, kind=Kind.ACTIVATION, dst_bank=Bank.ACT,
                       dst_base=200, a_exp=1, dst_exp=9)
    items = [item, Instruction(Opcode.END)]
    record = run(items, contents, exponents, ["pseudo", "nearest", "pseudo", "stochastic"])
    machine = record["machine"]
    assert record["done"]
    assert not np.array_equal(machine.policy.lanes.states,
                              RoundingPolicy(seed=P.lfsr_seed, n_lanes=P.lfsr_lanes).lanes.states)
    assert_cycles(record, items)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(1, 4), st.integers(1, LOSS_CLASSES), st.integers(-60, 24),
       st.sampled_from(ROUND_MODES), st.integers(0, 2**32 - 1))
def test_random_losses_run_as_the_machine_runs_them(samples, classes, s, mode, seed):
    """Any samples, classes, s and mode; logits from their own row-aligned base anywhere in ACT,
    labels and errors anywhere in ERR clear of each other."""
    rng = np.random.default_rng(seed)
    contents = contents_for(rng, 8)
    values = samples * classes
    a_base = 4 * int(rng.integers(0, (ACT_WORDS - values) // 4 + 1))
    b_base, dst_base = 4 * int(rng.integers(0, 8)), 64 + 4 * int(rng.integers(0, 100))
    contents[Bank.ERR][b_base:b_base + samples] = rng.integers(0, classes, samples)
    exponents = rng.integers(-40, 41, EXPONENT_REGISTERS)
    exponents[1] = s
    items = [Instruction(Opcode.LOSS, a_bank=Bank.ACT, a_base=a_base, b_bank=Bank.ERR,
                         b_base=b_base, m=samples, n=classes, dst_bank=Bank.ERR,
                         dst_base=dst_base, a_exp=1, dst_exp=2, kind=Kind.LOSS),
             Instruction(Opcode.END)]
    record = run(items, contents, exponents, [mode] * len(TENSOR_KINDS))
    assert record["done"]
    assert_cycles(record, items)


@pytest.mark.parametrize("samples, classes", [(1, 1), (2, 10), (3, 4), (2, 7)])
def test_loss_cycles_equal_the_formula(samples, classes):
    """The engine's cycles (start to done) are the first sample's reads and the unit's
    `loss_cycles`; the whole run `program_cycles`."""
    rng = np.random.default_rng(samples + classes)
    contents = loss_contents(rng, samples, classes)
    exponents = np.zeros(EXPONENT_REGISTERS, int)
    item = Instruction(Opcode.LOSS, a_bank=Bank.ACT, a_base=LOGITS, b_bank=Bank.ERR,
                       b_base=LABELS, m=samples, n=classes, dst_bank=Bank.ERR, dst_base=ERRORS)
    items = [item, Instruction(Opcode.END)]
    record = run(items, contents, exponents, ["pseudo"] * 4)
    assert record["done"]
    assert_cycles(record, items)
    assert engine_cycles(item, P) > loss_cycles(samples, classes)


# ---------------------------------------------------------------------------------------------
# UPDATE of wide weights
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("weight_bits", WEIGHT_BITS)
def test_update_runs_as_the_machine_runs_it(weight_bits):
    """W = sat(W - g) at +-(2**(n-1) - 1), with weights at +-limit and one short of it against
    g = +-127, and random ones; above 8 bits the int8 copies at aux (in the weight bank, as the
    compiler puts them); the second UPDATE in place over the first's weights; partial and whole
    last rows, and a one-row tensor (its copy pass reads the row the first pass wrote last)."""
    rng = np.random.default_rng(weight_bits)
    contents = contents_for(rng, weight_bits)
    limit = (1 << weight_bits - 1) - 1
    edge = [limit, -limit, limit, -limit, limit - 1, -limit + 1, 0, 0]
    contents[Bank.WEIGHT][:8] = edge
    contents[Bank.ERR][:8] = [-127, 127, 127, -127, -127, 127, 127, -127]
    contents[Bank.ERR][8:13] = [-127, 127, 0, 1, -1]
    update = dict(opcode=Opcode.UPDATE, a_bank=Bank.ERR, dst_bank=Bank.WEIGHT, n=weight_bits,
                  aux_bank=Bank.WEIGHT)
    items = [Instruction(**update, a_base=0, m=13, dst_base=0, aux_base=64),
             Instruction(**update, a_base=32, m=16, dst_base=0, aux_base=128),
             Instruction(**update, a_base=0, m=5, dst_base=200, aux_base=300),
             Instruction(**update, a_base=8, m=3, dst_base=240, aux_base=260),  # one row
             Instruction(Opcode.END)]
    record = run(items, contents, np.zeros(EXPONENT_REGISTERS, int), ["pseudo"] * 4,
                 weight_bits)
    weights = record["machine"].banks[Bank.WEIGHT]
    assert record["done"] and record["pc"] == len(items) - 1
    if weight_bits > 8:
        assert weights[64:77].any() and np.abs(weights[64:77]).max() <= 127
    assert_cycles(record, items, params_for(weight_bits))


def test_a_compiled_steps_loss_and_updates_run_as_the_machine_runs_them():
    """small-cnn's step compiled with 12-bit weights: its LOSS and its UPDATEs (the int8 copies
    where the compiler puts them, `<layer>.weight8` beside the weights) pass the core's checks
    and run as the machine runs them, on a core with the program's bank sizes."""
    program = compile_step("small-cnn", (1, 12, 12), 1, P, classes=10, fit=True, weight_bits=12)
    p = program_params(program, P)
    items = [item for item in program.instructions
             if getattr(item, "opcode", None) in (Opcode.LOSS, Opcode.UPDATE)]
    assert [item.opcode for item in items] == [Opcode.LOSS] + [Opcode.UPDATE] * 3
    assert all(item.dst_bank == item.aux_bank == Bank.WEIGHT for item in items[1:])
    items.append(Instruction(Opcode.END))
    rng = np.random.default_rng(12)
    contents = contents_for(rng, 12, p)
    contents[Bank.ERR][program.tensors[LABELS_TENSOR].base] = 7
    exponents = rng.integers(-20, 5, EXPONENT_REGISTERS)
    record = run(items, contents, exponents, ["pseudo"] * 4, 12,
                 unit=Bench(p, weight_bits=12))
    assert record["done"] and record["pc"] == len(items) - 1
    assert_cycles(record, items, p)


# ---------------------------------------------------------------------------------------------
# Refusals
# ---------------------------------------------------------------------------------------------

FIRST = [Instruction(Opcode.BITWIDTH, a_bank=Bank.ACC, a_base=16, m=30),
         Instruction(Opcode.ROUND, a_bank=Bank.ACC, a_base=16, m=30, keep=7, dst_bank=Bank.ACT,
                     dst_base=0, a_exp=2, dst_exp=9)]


def refused(item, weight_bits: int = 8, modes=("pseudo",) * 4) -> Refusal:
    """FIRST, `item`, a RELU, END: the run must stop at `item` (pc 2) with error, FIRST run."""
    items = FIRST + [item, Instruction(Opcode.RELU, a_bank=Bank.ACT, a_base=0, m=30,
                                       dst_bank=Bank.ACT, dst_base=64, aux_bank=Bank.ERR),
                     Instruction(Opcode.END)]
    rng = np.random.default_rng(5)
    record = run(items, contents_for(rng, weight_bits), rng.integers(-40, 41, EXPONENT_REGISTERS),
                 list(modes), weight_bits)
    assert record["error"] and not record["done"] and record["pc"] == 2
    assert_cycles(record, FIRST + [Instruction(Opcode.END)])
    return Refusal(record["cause"])


LOSS = dict(opcode=Opcode.LOSS, a_bank=Bank.ACT, a_base=0, b_bank=Bank.ERR, b_base=0,
            dst_bank=Bank.ERR, dst_base=400, m=3, n=10)


def loss(**changes) -> Instruction:
    return Instruction(**{**LOSS, **changes})


@pytest.mark.parametrize("item, cause, machine_raises", [
    (loss(n=0), Refusal.SETTING, True),
    (loss(n=LOSS_CLASSES + 1), Refusal.SETTING, False),
    (loss(m=0), Refusal.SETTING, False),
    (loss(a_bank=Bank.ACC), Refusal.BANKS, False),
    (loss(b_bank=Bank.ACC), Refusal.BANKS, False),
    (loss(dst_bank=Bank.ACT, dst_base=28), Refusal.BANKS, False),  # over logits 20..29
    (loss(dst_base=0), Refusal.BANKS, False),  # over the labels
    (loss(a_base=ACT_WORDS - 28), Refusal.PLACE, True),  # 30 logits, 3 labels would fit
    (loss(dst_bank=Bank.ACT, dst_base=ACT_WORDS - 28), Refusal.PLACE, True),
    (loss(b_base=ERR_WORDS - 4, m=5), Refusal.PLACE, True),  # 50 logits fit
    (loss(b_base=2), Refusal.PLACE, False),
])
def test_loss_the_core_cannot_run_as_the_machine_stops_the_run(item, cause, machine_raises):
    """Extents of m x n logits and errors and m labels, int8 banks for logits and labels, no
    result over an operand, 1..LOSS_CLASSES classes, at least one sample."""
    assert refused(item) == cause
    if machine_raises:
        with pytest.raises(ValueError):
            Machine(P, RoundingPolicy(), 3).execute(item)


def test_a_loss_whose_mode_code_is_no_mode_stops_the_run():
    assert refused(loss(), modes=("pseudo", "pseudo", "pseudo", len(ROUND_MODES))) == \
        Refusal.SETTING


WIDE = dict(opcode=Opcode.UPDATE, a_bank=Bank.ERR, a_base=0, dst_bank=Bank.WEIGHT, dst_base=0,
            aux_bank=Bank.WEIGHT, aux_base=64, m=16, n=16)
WEIGHT_WORDS_16 = bank_words(P, 16)[Bank.WEIGHT]


@pytest.mark.parametrize("changes, cause", [
    (dict(n=8), Refusal.SETTING),
    (dict(n=12), Refusal.SETTING),
    (dict(dst_bank=Bank.ACT), Refusal.BANKS),
    (dict(aux_base=8), Refusal.BANKS),
    (dict(aux_base=WEIGHT_WORDS_16 - 8), Refusal.PLACE),
    (dict(dst_base=WEIGHT_WORDS_16 - 8), Refusal.PLACE),
])
def test_wide_updates_the_core_cannot_run_stop_the_run(changes, cause):
    """A 16-bit core: n must be 16; the weights in the weight bank (the only one that wide),
    their copies clear of them and inside their bank."""
    assert refused(Instruction(**{**WIDE, **changes}), weight_bits=16) == cause


def test_an_8_bit_core_refuses_wide_updates():
    assert refused(Instruction(**WIDE)) == Refusal.SETTING
