"""The reference machine: runs a program instruction by instruction on banks of words.

It is what the RTL sequencer must do, stated in Python: the address generators of
`niti_hw.program.addressing` gather each operand from its bank, the golden model does every bit
of arithmetic (`policy.matmul`, `bitwidth`, `policy.round`, `weight_gradient`, the ReLU and
max-pool of `niti_hw.golden.layers`, `col2im`, `ce_gradient`, `IntegerWeights.apply`), and the
result goes back to its bank. A run of a compiled step is bit-identical to
`Sequential.train_step` (tests), so an RTL bench can compare its banks with this machine's
after every instruction.
"""

from __future__ import annotations

import numpy as np

from niti_hw.golden import (INT8_MAX, IntegerWeights, MaxPool2d, ReLU, RoundingPolicy, bitwidth,
                            ce_gradient, col2im, weight_gradient)
from niti_hw.golden.numbers import narrowing_shift
from niti_hw.golden.tensor import TENSOR_KINDS
from niti_hw.params import HardwareParams
from niti_hw.program.addressing import gather, im2col_indices
from niti_hw.program.isa import (EXPONENT_REGISTERS, KEEP_M_U, Bank, Geometry, Instruction,
                                 Layout, Opcode)
from niti_hw.program.memory import bank_words

INT8_BITS = INT8_MAX.bit_length() + 1
BANK_DTYPES = {Bank.ACT: np.int8, Bank.ERR: np.int8, Bank.WEIGHT: np.int32, Bank.ACC: np.int32}


class Machine:
    """Banks sized by `params` (and the stored weights' bits), the exponent register file, the B register of the last
    BITWIDTH, the current geometries, and the run's settings: rounding modes and LFSR lanes
    (`policy`) and m_u."""

    def __init__(self, params: HardwareParams, policy: RoundingPolicy, m_u: int,
                 weight_bits: int = 8):
        self.banks = {bank: np.zeros(words, BANK_DTYPES[bank])
                      for bank, words in bank_words(params, weight_bits).items()}
        self.exponents = np.zeros(EXPONENT_REGISTERS, np.int64)
        self.policy, self.m_u = policy, m_u
        self.bitwidth = 0
        self.geometry: dict[Opcode, Geometry] = {}

    def run(self, instructions) -> int:
        """Execute up to END; returns the number of instructions executed."""
        for count, item in enumerate(instructions):
            if item.opcode == Opcode.END:
                return count
            self.execute(item)
        raise ValueError("the program has no END instruction")

    def execute(self, item: Instruction | Geometry) -> None:
        if isinstance(item, Geometry):
            self.geometry[item.opcode] = item
            return
        getattr(self, "_" + item.opcode.name.lower())(item)

    def read(self, bank: Bank, base: int, words: int) -> np.ndarray:
        memory = self.banks[Bank(bank)]
        if base + words > memory.size:
            raise ValueError(f"read of {words} words at {base} runs past the {Bank(bank).name} "
                             f"bank's {memory.size} words")
        return memory[base:base + words]

    def write(self, bank: Bank, base: int, values) -> None:
        values = np.asarray(values).ravel()
        self.read(bank, base, values.size)[...] = values

    def _kind(self, item: Instruction) -> str:
        return TENSOR_KINDS[item.kind]

    def _conv(self) -> Geometry:
        return self.geometry[Opcode.CONV_GEOMETRY]

    def _operand_a(self, item: Instruction) -> np.ndarray:
        m, k = item.m, item.k
        if item.a_layout in (Layout.IM2COL, Layout.IM2COL_TRANSPOSED):
            g = self._conv()
            source = self.read(item.a_bank, item.a_base, g.batch * g.height * g.width * g.channels)
            columns = gather(source, im2col_indices(g))
            return columns if item.a_layout == Layout.IM2COL else columns.T
        stored = self.read(item.a_bank, item.a_base, m * k)
        return stored.reshape(m, k) if item.a_layout == Layout.ROWS else stored.reshape(k, m).T

    def _operand_b(self, item: Instruction) -> np.ndarray:
        k, n = item.k, item.n
        stored = self.read(item.b_bank, item.b_base, k * n)
        return stored.reshape(k, n) if item.b_layout == Layout.ROWS else stored.reshape(n, k).T

    def _gemm(self, item: Instruction) -> None:
        a, b = self._operand_a(item), self._operand_b(item)
        if a.shape != (item.m, item.k):
            raise ValueError(f"GEMM: the A geometry gives {a.shape}, the instruction m x k = "
                             f"{item.m} x {item.k}")
        self.write(item.dst_bank, item.dst_base, self.policy.matmul(a, b))
        self.exponents[item.dst_exp] = self.exponents[item.a_exp] + self.exponents[item.b_exp]

    def _col2im(self, item: Instruction) -> None:
        g = self._conv()
        cols = self.read(item.a_bank, item.a_base, item.m * item.n).reshape(item.m, item.n)
        self.write(item.dst_bank, item.dst_base,
                   col2im(cols, g.input_shape, (g.kernel_h, g.kernel_w), g.stride, g.padding))
        self.exponents[item.dst_exp] = self.exponents[item.a_exp]

    def _bitwidth(self, item: Instruction) -> None:
        self.bitwidth = bitwidth(self.read(item.a_bank, item.a_base, item.m))

    def _round(self, item: Instruction) -> None:
        wide = self.read(item.a_bank, item.a_base, item.m)
        if item.keep == KEEP_M_U:
            g = weight_gradient(wide, self.m_u, self.policy)
            self.write(item.dst_bank, item.dst_base, np.zeros(item.m, np.int8) if g is None else g)
            return
        k = narrowing_shift(self.bitwidth, item.keep)
        self.write(item.dst_bank, item.dst_base, self.policy.round(wide, k, self._kind(item)))
        self.exponents[item.dst_exp] = self.exponents[item.a_exp] + k

    def _relu(self, item: Instruction) -> None:
        x = self.read(item.a_bank, item.a_base, item.m)
        mask = ReLU.mask(x)
        self.write(item.dst_bank, item.dst_base, ReLU.apply(x, mask))
        self.write(item.aux_bank, item.aux_base, mask)
        self.exponents[item.dst_exp] = self.exponents[item.a_exp]

    def _relu_backward(self, item: Instruction) -> None:
        e = self.read(item.a_bank, item.a_base, item.m)
        mask = self.read(item.b_bank, item.b_base, item.m) != 0
        self.write(item.dst_bank, item.dst_base, ReLU.apply(e, mask))
        self.exponents[item.dst_exp] = self.exponents[item.a_exp]

    def _pool_layer(self) -> tuple[MaxPool2d, Geometry]:
        g = self.geometry[Opcode.POOL_GEOMETRY]
        return MaxPool2d(g.kernel_h, g.stride), g

    def _pool(self, item: Instruction) -> None:
        pool, g = self._pool_layer()
        x = self.read(item.a_bank, item.a_base, item.m).reshape(g.input_shape)
        best, winner = pool.pool(x)
        self.write(item.dst_bank, item.dst_base, best)
        self.write(item.aux_bank, item.aux_base, winner)
        self.exponents[item.dst_exp] = self.exponents[item.a_exp]

    def _pool_backward(self, item: Instruction) -> None:
        pool, g = self._pool_layer()
        shape = (g.batch, g.out_height, g.out_width, g.channels)
        words = g.windows * g.channels
        e = self.read(item.a_bank, item.a_base, words).reshape(shape)
        winner = self.read(item.b_bank, item.b_base, words).reshape(shape)
        self.write(item.dst_bank, item.dst_base, pool.route(e, winner, g.input_shape))
        self.exponents[item.dst_exp] = self.exponents[item.a_exp]

    def _loss(self, item: Instruction) -> None:
        logits = self.read(item.a_bank, item.a_base, item.m * item.n).reshape(item.m, item.n)
        labels = self.read(item.b_bank, item.b_base, item.m)
        e, exp = ce_gradient(logits, int(self.exponents[item.a_exp]), labels,
                             self.policy.loss, self.policy.lanes)
        self.write(item.dst_bank, item.dst_base, e)
        self.exponents[item.dst_exp] = exp

    def _update(self, item: Instruction) -> None:
        """W = sat(W - g) on `n`-bit weights; wider than 8, also their int8 copy to `aux`."""
        g = self.read(item.a_bank, item.a_base, item.m)
        weights = IntegerWeights(self.read(item.dst_bank, item.dst_base, item.m), 0, item.n)
        weights.apply(g)
        self.write(item.dst_bank, item.dst_base, weights.values)
        if item.n > INT8_BITS:
            self.write(item.aux_bank, item.aux_base, weights.as_int8().values)
