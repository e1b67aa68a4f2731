"""The sequencer: runs a program from its instruction memory, instruction after instruction, as the
reference machine (`niti_hw.program.machine.Machine`) does, with no host between them.

It holds the architectural state the engines do not: the program counter, the exponent register
file, the B register of the last BITWIDTH and the current convolution and pooling geometry.
"""

from __future__ import annotations

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, Value, unsigned
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

from niti_hw.golden import INT8_MAX
from niti_hw.params import ROUND_MODES, HardwareParams
from niti_hw.perf.timing import IMEM_READ_LATENCY
from niti_hw.program.isa import (EXPONENT_REGISTERS, INSTRUCTION_WORDS, KEEP_M_U, WORD_BITS, Bank,
                                 Kind, Opcode)
from niti_hw.program.memory import bank_words
from niti_hw.rtl.instruction import (EXPONENT, INSTRUCTION_BITS, Refusal, config_layout,
                                     geometry_layout, tensor_layout)
from niti_hw.rtl.banks import word_bits
from niti_hw.rtl.geometry import GeometryExtents
from niti_hw.rtl.layouts import BITWIDTH, SHIFT
from niti_hw.rtl.loss_engine import LOSS_CLASSES
from niti_hw.rtl.max_pool import MAX_KERNEL
from niti_hw.rtl.narrow_engine import rounding_mode
from niti_hw.rtl.shift_add import capped_factors, capped_terms, capped_total, partial_sums
from niti_hw.rtl.update_engine import INT8_BITS

if IMEM_READ_LATENCY != 1:
    raise RuntimeError("rtl/sequencer.py fetches through the instruction memory's synchronous read: "
                       "perf.timing's IMEM_READ_LATENCY must say 1")

ENGINES = ("narrow", "relu", "update", "loss", "gemm", "pool", "gather")
ENGINE_OF = {Opcode.BITWIDTH: "narrow", Opcode.ROUND: "narrow", Opcode.RELU: "relu",
             Opcode.RELU_BACKWARD: "relu", Opcode.UPDATE: "update", Opcode.LOSS: "loss",
             Opcode.GEMM: "gemm", Opcode.POOL: "pool", Opcode.POOL_BACKWARD: "gather",
             Opcode.COL2IM: "gather"}
"""The engine that runs each opcode."""
OPERANDS = {Opcode.BITWIDTH: ("a",), Opcode.ROUND: ("a", "dst"), Opcode.RELU: ("a", "dst", "aux"),
            Opcode.RELU_BACKWARD: ("a", "b", "dst"), Opcode.UPDATE: ("a", "dst"),
            Opcode.LOSS: ("a", "b", "dst")}
"""The tensors (roles) each opcode reads or writes, `m` values each (but `ROWS_OF_N`'s; GEMM's:
`_gemm_refusal`)."""
ROWS_OF_N = {Opcode.LOSS: ("a", "dst")}
"""Roles of `m` rows of `n` values: a LOSS's logits and errors (n <= LOSS_CLASSES, else
refused)."""
STREAMED = (Opcode.ROUND, Opcode.RELU, Opcode.RELU_BACKWARD)
"""Opcodes whose engine writes word i after reading word i: a result in place over an operand
(the same base) is safe, one that overlaps it at another base would overwrite words not yet read
(the machine reads whole tensors first), so the sequencer refuses it (`Refusal.PLACE`)."""
GEOMETRY_OPERANDS = {
    Opcode.POOL: ("pool", {"a": "inputs", "dst": "outputs", "aux": "outputs"}),
    Opcode.POOL_BACKWARD: ("pool", {"a": "outputs", "b": "outputs", "dst": "inputs"}),
    Opcode.COL2IM: ("conv", {"a": "columns", "dst": "inputs"}),
}
"""The opcodes whose tensors a geometry register shapes: the register, and each role's words
(`GeometryExtents`); their results are written while their operands are still read, so a result
may not overlap an operand (nor POOL's values its winners)."""
PRODUCTS = ("rows_of_n", "m_k", "k_n", "m_n")
"""The products of an instruction's sizes its checks need (`Sequencer._product_factors`)."""
if max(tensor_layout()[size].offset + tensor_layout()[size].width for size in ("m", "n", "k")) \
        > (INSTRUCTION_WORDS - 1) * WORD_BITS:
    raise RuntimeError("rtl/sequencer.py orders the products' factors while an instruction's last "
                       "word is read: m, n and k must lie in the words before it")
CAUSES = (Refusal.OPCODE, Refusal.PLACE, Refusal.BANKS, Refusal.SETTING)
"""The check's refusals, the first that holds reported (`_first_cause`)."""
MAX_M_U = INT8_MAX.bit_length() + 1
"""Largest m_u golden `weight_gradient` takes (a gradient is int8)."""


def _first_cause(causes) -> Value:
    """The first of `CAUSES` whose bit is set in `causes`, Refusal.NONE if none: registered bits
    into a small priority mux in the dispatch cycle, the check's conditions before it."""
    result = Refusal.NONE.value
    for n, cause in reversed(list(enumerate(CAUSES))):
        result = Mux(causes[n], cause.value, result)
    return result


def imem_write_signature(program_words: int) -> wiring.Signature:
    return wiring.Signature({"en": Out(1), "addr": Out(range(program_words)),
                             "data": Out(WORD_BITS)})


class Sequencer(wiring.Component):
    """Fetch, decode, check, dispatch, wait, retire; one instruction at a time.

    Host side: `imem` writes 32-bit program words (`Program.words()`) while not `busy`; `exp_wr`
    and `exp_rd` write (while not busy) and read exponent registers; `config` (m_u and each
    kind's rounding mode) holds for the run. `start` (not busy) runs from word 0: `busy` rises,
    `done`, `error` and `cause` clear. END lowers busy and raises `done`. An instruction the core
    cannot run as the reference machine would stops the run there: `error` rises with its
    `cause` (`Refusal`) and `pc` (its index in the program) and nothing of it is executed; both
    hold until the next start, so a host sees where and why, not a run that claims success.

    Engine side: `op` (the decoded instruction, held), one-hot `launch` (a cycle) and `select`
    (held until retirement, for the bank ports), `finished` from each engine; the narrow engine's
    `b_result` and `k_result` update B and the exponent registers as the machine does:
    BITWIDTH sets B; ROUND (keep != KEEP_M_U) sets exp[dst] = exp[a] + k; RELU, RELU_BACKWARD,
    POOL, POOL_BACKWARD and COL2IM set exp[dst] = exp[a]; geometry instructions set `conv` or
    `pool`, whose extents (`GeometryExtents`) the checks of the instructions they shape use.
    `a_exponent` is exp[a] for the engine (a LOSS's s); a LOSS sets exp[dst] = the loss engine's
    `loss_exponent`; a GEMM exp[a] + exp[b]. UPDATEs are of `weight_bits`-wide weights (the
    core's weight bank).

    Timing: FETCH (`INSTRUCTION_WORDS` reads, `IMEM_READ_LATENCY` behind), DECODE, PRODUCTS,
    CHECK, DISPATCH, the engine's cycles, RETIRE; `niti_hw.perf.timing.instruction_cycles`.
    """

    def __init__(self, params: HardwareParams, program_words: int, weight_bits: int = INT8_BITS):
        if program_words < INSTRUCTION_WORDS:
            raise ValueError(f"the instruction memory holds at least one instruction "
                             f"({INSTRUCTION_WORDS} words); got {program_words}")
        self.params, self.program_words, self.weight_bits = params, program_words, weight_bits
        pc_shape = unsigned((program_words // INSTRUCTION_WORDS).bit_length())
        super().__init__({
            "imem": In(imem_write_signature(program_words)),
            "exp_wr": In(wiring.Signature({"en": Out(1), "index": Out(range(EXPONENT_REGISTERS)),
                                           "value": Out(EXPONENT)})),
            "exp_rd": In(wiring.Signature({"index": Out(range(EXPONENT_REGISTERS)),
                                           "value": In(EXPONENT)})),
            "config": In(config_layout()),
            "start": In(1),
            "busy": Out(1), "done": Out(1), "error": Out(1),
            "cause": Out(Refusal), "pc": Out(pc_shape),
            "b": Out(BITWIDTH),
            "conv": Out(geometry_layout()), "pool": Out(geometry_layout()),
            "op": Out(tensor_layout()),
            "launch": Out(len(ENGINES)), "select": Out(len(ENGINES)),
            "finished": In(len(ENGINES)),
            "b_result": In(BITWIDTH), "k_result": In(SHIFT),
            "a_exponent": Out(EXPONENT), "loss_exponent": In(EXPONENT),
        })

    def elaborate(self, platform):
        op = self.op
        m = Module()
        m.submodules.imem = imem = memory.Memory(shape=WORD_BITS, depth=self.program_words,
                                                 init=[])
        host, reader = imem.write_port(), imem.read_port()
        m.d.comb += [host.addr.eq(self.imem.addr), host.data.eq(self.imem.data),
                     host.en.eq(self.imem.en & ~self.busy)]
        exps = [Signal(EXPONENT, name=f"exp{n}") for n in range(EXPONENT_REGISTERS)]
        a_value, b_value = Signal(EXPONENT), Signal(EXPONENT)  # exp[a], exp[b] from CHECK on
        m.d.comb += [self.exp_rd.value.eq(Array(exps)[self.exp_rd.index]),
                     self.a_exponent.eq(a_value)]
        retire, exp_write, exp_value = Signal(), Signal(), Signal(EXPONENT)
        self._exponent_update(m, a_value, b_value, exp_write, exp_value)
        for n, register in enumerate(exps):  # a compare per register, not a case per write
            with m.If(self.exp_wr.en & ~self.busy & (self.exp_wr.index == n)):
                m.d.sync += register.eq(self.exp_wr.value)
            with m.If(retire & exp_write & (op.dst_exp == n)):
                m.d.sync += register.eq(exp_value)

        addr = Signal(range(self.program_words), name="fetch_addr")  # the instruction's word 0
        issued = Signal(range(INSTRUCTION_WORDS + 1))
        arrived = Signal(range(INSTRUCTION_WORDS + 1))
        got = Signal(name="word_valid")  # the word read last cycle is on the read port
        words = Signal(INSTRUCTION_BITS, name="instruction_words", reset_less=True)
        fetching = Signal()
        m.d.comb += [reader.addr.eq(addr + issued),
                     reader.en.eq(fetching & (issued < INSTRUCTION_WORDS))]
        m.d.sync += got.eq(reader.en)
        with m.If(reader.en):
            m.d.sync += issued.eq(issued + 1)
        with m.If(got):
            m.d.sync += [words.eq(Cat(words[WORD_BITS:], reader.data)), arrived.eq(arrived + 1)]
        geometry = geometry_layout()(words[:geometry_layout().size])
        m.submodules.extents = unit = GeometryExtents(word_bits(self.params))
        m.d.comb += [unit.conv.eq(self.conv), unit.pool.eq(self.pool)]
        extents = {"conv": unit.conv_extents, "pool": unit.pool_extents}

        causes = Signal(len(CAUSES))  # which of CAUSES hold, from the check
        refusal = Signal(Refusal)
        m.d.comb += refusal.as_value().eq(_first_cause(causes))
        products = {name: Signal(word_bits(self.params) + 1, name=f"{name}_words")
                    for name in PRODUCTS}
        # The sizes are in the words before the last: their factors ordered while it is read
        # (`words` one word short of the instruction), their terms summed in part at decode.
        early = tensor_layout()(Cat(words[WORD_BITS:], Const(0, WORD_BITS))[:tensor_layout().size])
        ordered = self._product_factors(early)
        factors = {name: [Signal.like(v, name=f"{name}_{part}") for part, v in
                          zip(("wide", "narrow", "over"), values)]
                   for name, values in ordered.items()}
        staged = {}  # each product's overflow flag and partial sums, from the decode
        m.d.sync += self.launch.eq(0)
        with m.FSM():
            with m.State("IDLE"):
                with m.If(self.start):
                    m.d.sync += [self.busy.eq(1), self.done.eq(0), self.error.eq(0),
                                 self.cause.eq(Refusal.NONE), self.pc.eq(0), addr.eq(0),
                                 fetching.eq(1), issued.eq(0), arrived.eq(0)]
                    m.next = "FETCH"
            with m.State("FETCH"):
                with m.If(got & (arrived == INSTRUCTION_WORDS - 1)):
                    m.d.sync += fetching.eq(0)
                    m.d.sync += [r.eq(v) for name, values in ordered.items()
                                 for r, v in zip(factors[name], values)]
                    m.next = "DECODE"
            with m.State("DECODE"):
                decoded = tensor_layout()(words[:tensor_layout().size])
                m.d.sync += op.eq(decoded)
                for name, (wide, narrow, too_wide) in factors.items():
                    terms, over = capped_terms(wide, narrow, word_bits(self.params))
                    values = [too_wide | over, *partial_sums(terms)]
                    staged[name] = [Signal.like(v, name=f"{name}_{n}") for n, v in
                                    enumerate(values)]
                    m.d.sync += [r.eq(v) for r, v in zip(staged[name], values)]
                m.next = "PRODUCTS"
            with m.State("PRODUCTS"):
                m.d.sync += [products[name].eq(capped_total(partials, over, word_bits(self.params)))
                             for name, (over, *partials) in staged.items()]
                m.next = "CHECK"
            with m.State("CHECK"):
                m.d.sync += [causes.eq(self._causes(op, products, extents)),
                             a_value.eq(Array(exps)[op.a_exp]), b_value.eq(Array(exps)[op.b_exp])]
                m.next = "DISPATCH"
            with m.State("DISPATCH"):
                with m.If(refusal != Refusal.NONE):
                    m.d.sync += [self.busy.eq(0), self.error.eq(1), self.cause.eq(refusal)]
                    m.next = "IDLE"
                with m.Elif(op.opcode == Opcode.END):
                    m.d.sync += [self.busy.eq(0), self.done.eq(1)]
                    m.next = "IDLE"
                with m.Elif(op.opcode == Opcode.CONV_GEOMETRY):
                    m.d.sync += self.conv.eq(geometry)
                    m.d.comb += unit.load[0].eq(1)
                    m.next = "RETIRE"
                with m.Elif(op.opcode == Opcode.POOL_GEOMETRY):
                    m.d.sync += self.pool.eq(geometry)
                    m.d.comb += unit.load[1].eq(1)
                    m.next = "RETIRE"
                with m.Else():
                    with m.Switch(op.opcode):
                        for opcode, engine in ENGINE_OF.items():
                            with m.Case(opcode):
                                one_hot = 1 << ENGINES.index(engine)
                                m.d.sync += [self.launch.eq(one_hot), self.select.eq(one_hot)]
                    m.next = "EXECUTE"
            with m.State("EXECUTE"):
                with m.If((self.finished & self.select).any()):
                    m.next = "RETIRE"
            with m.State("RETIRE"):
                m.d.comb += retire.eq(1)
                with m.If(op.opcode == Opcode.BITWIDTH):
                    m.d.sync += self.b.eq(self.b_result)
                m.d.sync += [self.select.eq(0), self.pc.eq(self.pc + 1),
                             addr.eq(addr + INSTRUCTION_WORDS), issued.eq(0), arrived.eq(0)]
                with m.If(addr + INSTRUCTION_WORDS > self.program_words - INSTRUCTION_WORDS):
                    m.d.sync += [self.busy.eq(0), self.error.eq(1),
                                 self.cause.eq(Refusal.PROGRAM)]
                    m.next = "IDLE"
                with m.Else():
                    m.d.sync += fetching.eq(1)
                    m.next = "FETCH"
        return m

    def _exponent_update(self, m: Module, a_value, b_value, write, value) -> None:
        """The machine's exponent update at retirement: exp[dst] = exp[a] + k for a ROUND (keep
        != KEEP_M_U), exp[a] for RELU, RELU_BACKWARD, POOL, POOL_BACKWARD and COL2IM, the loss
        unit's for LOSS, exp[a] + exp[b] for GEMM, none for the others.

        `write` and `value` are registers, formed the cycle before RETIRE (the engine's `done`, or
        the dispatch of a geometry) from inputs that hold through RETIRE (the op, exp[a], exp[b]
        from the check, k and the loss exponent from the engine's done on), so the retirement
        only decodes dst and writes."""
        op = self.op
        narrowing = (op.opcode == Opcode.ROUND) & (op.keep != KEEP_M_U)
        passing = Cat(*[op.opcode == code for code in
                        (Opcode.RELU, Opcode.RELU_BACKWARD, *GEOMETRY_OPERANDS)]).any()
        loss = op.opcode == Opcode.LOSS
        gemm = op.opcode == Opcode.GEMM  # exp[dst] = exp[a] + exp[b]
        m.d.sync += [
            write.eq(narrowing | passing | loss | gemm),
            value.eq(Mux(loss, self.loss_exponent,
                         a_value + Mux(narrowing, self.k_result, 0)
                         + Mux(gemm, b_value, 0))),
        ]

    def _product_factors(self, op) -> dict:
        """The checks' products of `op`'s sizes (`PRODUCTS`) as `capped_factors`: ordered while
        the fetch ends, their terms summed in part at decode and in whole in the next cycle, so
        the check cycle only adds and compares; capped past every bank (`capped_product`)."""
        bits = word_bits(self.params)
        return {"rows_of_n": capped_factors(op.m, op.n[:LOSS_CLASSES.bit_length()], bits),
                "m_k": capped_factors(op.m, op.k, bits), "k_n": capped_factors(op.k, op.n, bits),
                "m_n": capped_factors(op.m, op.n, bits)}

    def _causes(self, op, products, extents):
        """Why `op` cannot run as the machine runs it: a bit per `CAUSES` that holds (none: it
        can); `products` of its sizes (`_product_factors`, summed), `extents` of the conv and pool geometry
        registers (`GeometryExtents`)."""
        p, shift = self.params, self.params.lanes.bit_length() - 1

        words = bank_words(p, self.weight_bits)
        rows_of_n = products["rows_of_n"]  # m rows of n <= LOSS_CLASSES values (more: refused)

        def extent(code, role: str):
            return rows_of_n if role in ROWS_OF_N.get(code, ()) else op.m

        def misplaced(role: str, values):
            bank, base = op[f"{role}_bank"], op[f"{role}_base"]
            room = Array(words[b] for b in Bank)[bank]
            return (base[:shift] != 0 if shift else 0) | (base + values > room)

        def wide(role: str):
            return op[f"{role}_bank"] == Bank.ACC

        def overlap(one: str, other: str, values, other_values):
            """Two tensors share words: a result that would overwrite an operand still read."""
            start, end = op[f"{one}_base"], op[f"{one}_base"] + values
            other_start, other_end = op[f"{other}_base"], op[f"{other}_base"] + other_values
            return ((op[f"{one}_bank"] == op[f"{other}_bank"]) & (start < other_end)
                    & (other_start < end))

        opcode = op.opcode
        wide_weights = self.weight_bits > INT8_BITS
        place = Cat(*[(opcode == code) & Cat(*[misplaced(role, extent(code, role))
                                               for role in roles]).any()
                      for code, roles in OPERANDS.items()]).any()
        for code in STREAMED:  # a result over an operand, but in place
            roles = OPERANDS[code]
            place = place | ((opcode == code) & Cat(*[
                overlap(result, role, op.m, op.m) & (op[f"{result}_base"] != op[f"{role}_base"])
                for result in ("dst", "aux") if result in roles
                for role in ("a", "b") if role in roles]).any())
        if wide_weights:  # the int8 copies
            place = place | ((opcode == Opcode.UPDATE) & misplaced("aux", op.m))
        gemm_place, gemm_banks, gemm_setting = self._gemm_refusal(op, products, words,
                                                                  extents["conv"])
        place = place | gemm_place
        unwalkable = 0  # a geometry golden would not walk as the engine does
        for code, (register, roles) in GEOMETRY_OPERANDS.items():
            sizes = {role: extents[register][extent] for role, extent in roles.items()}
            results = [role for role in ("dst", "aux") if role in roles]
            clash = [overlap(result, role, sizes[result], sizes[role])  # results on operands
                     for n, result in enumerate(results)
                     for role in ["a", "b", *results[n + 1:]] if role in roles]
            place = place | ((opcode == code)
                             & Cat(*[misplaced(role, size) for role, size in sizes.items()],
                                   *clash).any())
            g = getattr(self, register)
            pooling = ((g.kernel_h != g.kernel_w) | (g.padding != 0) | (g.kernel_h > MAX_KERNEL)
                       if register == "pool" else 0)
            unwalkable = unwalkable | ((opcode == code) & (~extents[register].shaped | pooling))
        banks = (((opcode == Opcode.RELU) & (wide("a") | (op.dst_bank == op.aux_bank)))
                 | ((opcode == Opcode.RELU_BACKWARD) & wide("a"))
                 | ((opcode == Opcode.UPDATE) & (wide("a") | wide("dst")))
                 | ((opcode == Opcode.LOSS)
                    & (wide("a") | wide("b") | overlap("dst", "a", rows_of_n, rows_of_n)
                       | overlap("dst", "b", rows_of_n, op.m)))
                 | ((opcode == Opcode.POOL) & (wide("a") | (op.dst_bank == op.aux_bank)))
                 | ((opcode == Opcode.POOL_BACKWARD) & wide("a"))
                 | ((opcode == Opcode.COL2IM) & ~(wide("a") & wide("dst")))
                 | gemm_banks)
        if wide_weights:  # wide weights in the weight bank, their copies clear of them
            banks = banks | ((opcode == Opcode.UPDATE) & ((op.dst_bank != Bank.WEIGHT)
                                                         | overlap("aux", "dst", op.m, op.m)))
        m_u, conv = self.config.m_u, extents["conv"]
        loss_mode = self.config.modes[Kind.LOSS]
        setting = (((opcode == Opcode.ROUND)
                    & ((rounding_mode(self.config, op) >= len(ROUND_MODES))
                       | ((op.keep == KEEP_M_U) & ((m_u == 0) | (m_u > MAX_M_U)))))
                   | ((opcode == Opcode.UPDATE) & (op.n != self.weight_bits))
                   | ((opcode == Opcode.LOSS)
                      & ((loss_mode >= len(ROUND_MODES)) | (op.m == 0) | (op.n == 0)
                         | (op.n > LOSS_CLASSES)))
                   | unwalkable | ((opcode == Opcode.POOL) & (op.m != extents["pool"].inputs))
                   | ((opcode == Opcode.COL2IM) & ((op.m != conv.windows) | (op.n != conv.depth)))
                   | gemm_setting)
        known = Cat(*[opcode == code for code in
                      (Opcode.END, Opcode.CONV_GEOMETRY, Opcode.POOL_GEOMETRY, *ENGINE_OF)]).any()
        return Cat(~known, place, banks, setting)

    def _gemm_refusal(self, op, products, words, conv):
        """A GEMM's (place, banks, setting) refusals: an operand's real extent past its bank (A:
        m * k words, or the NHWC source of an im2col layout; B: k * n; dst: m * n; at any word);
        an operand in the int32 bank or the result outside it, a B layout that is no B layout;
        an empty dimension, K past the accumulator (`max_k`), an im2col A not of the geometry's
        shape (windows x depth, or its transpose); `conv`: the conv geometry's extents. The
        extents are capped past every bank (`capped_product`): where a capped one differs from
        the real one, both are past their bank, and where a capped extent meets m or k in the
        shape check, a product of that m or k is past its bank too (PLACE wins over SETTING)."""
        gemm = op.opcode == Opcode.GEMM
        unfold = op.a_layout[1]  # IM2COL or IM2COL_TRANSPOSED
        extents = {"a": Mux(unfold, conv.inputs, products["m_k"]), "b": products["k_n"],
                   "dst": products["m_n"]}
        room = Array(words[b] for b in Bank)
        place = Cat(*[op[f"{role}_base"] + extent > room[op[f"{role}_bank"]]
                      for role, extent in extents.items()]).any()
        banks = ((op.a_bank == Bank.ACC) | (op.b_bank == Bank.ACC) | (op.dst_bank != Bank.ACC)
                 | op.b_layout[1])
        windows, depth, transposed = conv.windows, conv.depth, op.a_layout[0]
        shape = unfold & ((op.m != Mux(transposed, depth, windows))
                          | (op.k != Mux(transposed, windows, depth)))
        setting = (op.m == 0) | (op.n == 0) | (op.k == 0) | (op.k > self.params.max_k) | shape
        return gemm & place, gemm & banks, gemm & setting
