"""Cycle timing of every hardware unit: the one place that states latencies and throughput.

The Amaranth modules in `niti_hw.rtl` build their pipelines from these constants, the cocotb benches
assert that the simulated cycle counts equal these formulas, and the cost model (`niti_hw.perf.cost`)
sums them over a training step. Pure Python: nothing here imports Amaranth.

One section per unit, in dataflow order; a new unit appends its own section (constants, then
functions taking a `HardwareParams`), so two people can extend the file without touching each
other's formulas. "Cycles" are enabled clock cycles with no input gaps and no backpressure.
"""

from __future__ import annotations

from math import ceil

import numpy as np

from niti_hw.params import HardwareParams
from niti_hw.program.isa import (GEOMETRY_OPCODES, INSTRUCTION_WORDS, KEEP_M_U, Geometry,
                                 Opcode)

# ---------------------------------------------------------------------------------------------
# Int8Multiplier (rtl/multiplier.py): operand register, product register, transport register.
# ---------------------------------------------------------------------------------------------

MULTIPLIER_LATENCY = 3
"""Enabled cycles from operands to product; one product per cycle."""


# ---------------------------------------------------------------------------------------------
# SystolicArray (rtl/systolic_array.py): output stationary, skew inside, row-wise drain.
# ---------------------------------------------------------------------------------------------

DRAIN_EXTRA = MULTIPLIER_LATENCY + 3
"""Cycles from a tile's last operand beat to its row 0, on top of the skew to the last column
(cols - 1): the multiplier's registers, the capture register, the drain register (the row select
gathers from the whole array, so it gets a cycle of its own) and the output buffer slot."""


def min_tile_cycles(p: HardwareParams) -> int:
    """Cycles between the last beats of consecutive tiles; shorter tiles get bubbles.

    Each PE copies its final sum into one result register, and rows drain one per cycle, so a tile
    cannot end before the previous one has drained (rows) nor before the skew has passed (cols).
    """
    return max(p.rows, p.cols)


def first_row_latency(p: HardwareParams) -> int:
    """Enabled cycles from accepting a tile's last operand beat to its row 0 being valid."""
    return p.cols - 1 + DRAIN_EXTRA


def tile_count(m: int, n: int, p: HardwareParams) -> int:
    """Output tiles of an M x N result: rows x cols blocks, edge blocks zero-padded."""
    return ceil(m / p.rows) * ceil(n / p.cols)


def tile_period(k: int, p: HardwareParams) -> int:
    """Cycles between consecutive tiles' last beats on the array alone: K beats, or the bubble rule."""
    return max(k, min_tile_cycles(p))


def array_gemm_cycles(m: int, n: int, k: int, p: HardwareParams) -> int:
    """Cycles of one M x N x K GEMM on the SystolicArray alone, from the first operand beat accepted
    to the last result row valid (inclusive), from idle, no gaps and no backpressure.

    Tile t's last beat is accepted at (K - 1) + t * tile_period; the last tile's row `rows - 1`
    follows first_row_latency + rows - 1 cycles later.
    """
    tiles = tile_count(m, n, p)
    last_beat = (k - 1) + (tiles - 1) * tile_period(k, p)
    return last_beat + first_row_latency(p) + p.rows - 1 + 1


# ---------------------------------------------------------------------------------------------
# BitwidthDetector (rtl/bitwidth_detector.py): B = bit_length(max |v|), `lanes` values per beat.
# ---------------------------------------------------------------------------------------------

DETECTOR_LATENCY = 3
"""Cycles from a tensor's last beat accepted to B valid (magnitude, OR, leading one); one beat per
cycle, tensors back to back."""


def detector_cycles(values: int, p: HardwareParams) -> int:
    """Cycles to find B of a tensor of `values` int32 entries streamed `lanes` per beat."""
    return ceil(values / p.lanes) + DETECTOR_LATENCY


# ---------------------------------------------------------------------------------------------
# ShiftRound (rtl/shift_round.py): R(x, k, mode), `lanes` values per beat.
# ---------------------------------------------------------------------------------------------

ROUND_LATENCY = 9
"""Register stages from acceptance to the output register, the same in every rounding mode; one
beat per cycle."""


def round_cycles(values: int, p: HardwareParams) -> int:
    """Cycles to round a tensor of `values` int32 entries streamed `lanes` per beat."""
    return ceil(values / p.lanes) + ROUND_LATENCY


# ---------------------------------------------------------------------------------------------
# Datapath (rtl/datapath.py): the tensor datapath. Array -> scratchpad + BitwidthDetector over the
# whole GEMM output -> k by the tensor's rule -> replay of the tensor in row-major order through
# ShiftRound. The scratchpad takes a whole array row per cycle, so the array never stalls.
# ---------------------------------------------------------------------------------------------

TENSOR_DIM_BITS = 16
"""Width of a tensor's m and n in the cfg beat (each below 2**16)."""

TENSOR_CFG_FIELDS = {"m": TENSOR_DIM_BITS, "n": TENSOR_DIM_BITS, "rule": 1, "m_u": 4,
                     "band": TENSOR_DIM_BITS, "block": TENSOR_DIM_BITS}
"""The cfg beat's fields and their widths, in layout order (`rtl.datapath.tensor_cfg_layout` is
built from it, `niti_hw.registers` maps it onto the CFG registers): output shape m x n, k rule
(0 narrow, 1 gradient), m_u of the gradient rule, the tile walk's band and block."""

TENSOR_CONFIG_CYCLES = 1 + TENSOR_DIM_BITS + 1
"""Cycles from a tensor's cfg beat accepted to its first operand beat accepted: the cfg register
(with bit 0 of m * n), m * n by shift and add (one step per further bit of m: no multiplier on the
control path, the size compares registered in the last step), the size check."""

ROW_WRITE_LATENCY = 2
"""A drained row is registered twice before it is written to the scratchpad and the detector: a
plain register carries it from the array across the die, the next holds its place in the tensor."""

K_LATCH = 1
"""Cycle from the detector's B to the k register and the first scratchpad read."""

SCRATCHPAD_READ_LATENCY = 2
"""A beat's data two cycles after its address: the block RAM's synchronous read, then a register
(the RAMs sit at fixed sites far from the rounding unit)."""


def replay_beats(m: int, n: int, p: HardwareParams) -> int:
    """`lanes`-wide beats of an M x N tensor in row-major order (the final beat may be partial)."""
    return ceil(m * n / p.lanes)


def tensor_operand_cycles(m: int, n: int, k: int, p: HardwareParams) -> int:
    """From the first operand beat accepted to the last one accepted (inclusive)."""
    return (tile_count(m, n, p) - 1) * tile_period(k, p) + k


def tensor_detect_cycles(p: HardwareParams) -> int:
    """From the last operand beat accepted to the first scratchpad read of the replay: the last
    tile's drain to its final row, the row register, the detector, the k latch."""
    return (first_row_latency(p) + p.rows - 1 + ROW_WRITE_LATENCY + DETECTOR_LATENCY + K_LATCH)


def tensor_replay_cycles(m: int, n: int, p: HardwareParams) -> int:
    """From the first scratchpad read to the last rounded beat valid (inclusive)."""
    return replay_beats(m, n, p) + SCRATCHPAD_READ_LATENCY + ROUND_LATENCY


def tensor_gemm_cycles(m: int, n: int, k: int, p: HardwareParams) -> int:
    """One M x N x K GEMM on the tensor datapath, every tile, B over the whole tensor and the
    rounded replay: from the first operand beat accepted to the last rounded beat (inclusive), no
    gaps, no backpressure. The next tensor's cfg may be taken once the replay's reads end."""
    return (tensor_operand_cycles(m, n, k, p) - 1 + tensor_detect_cycles(p)
            + tensor_replay_cycles(m, n, p))


def tensor_cycles(m: int, n: int, k: int, p: HardwareParams) -> int:
    """tensor_gemm_cycles plus the cfg beat ahead of it: from the cfg accepted to the last beat."""
    return TENSOR_CONFIG_CYCLES + tensor_gemm_cycles(m, n, k, p)


# ---------------------------------------------------------------------------------------------
# WeightUpdate (rtl/update_unit.py): W = sat(W - g), read-out R(W, weight_bits - 8, nearest).
# ---------------------------------------------------------------------------------------------

UPDATE_LATENCY = 4
"""Cycles from acceptance to a valid output: subtract; saturate; add half; shift and clamp into
the output buffer. One beat of `lanes` weights per cycle."""


def update_cycles(weights: int, p: HardwareParams) -> int:
    """From the first beat accepted to the last updated beat valid (inclusive) for `weights`
    weights streamed `lanes` per beat."""
    return ceil(weights / p.lanes) + UPDATE_LATENCY


# ---------------------------------------------------------------------------------------------
# Relu, ReluBackward (rtl/relu.py): y = x where x > 0 else 0 with its mask; back, e where the mask.
# ---------------------------------------------------------------------------------------------

RELU_LATENCY = 2
"""Cycles from acceptance to a valid output, either direction: input register; compare and select
into the output buffer. One beat of `lanes` values per cycle."""


def relu_cycles(values: int, p: HardwareParams) -> int:
    """From the first beat accepted to the last output beat valid (inclusive) for `values` values
    streamed `lanes` per beat, forward or backward."""
    return ceil(values / p.lanes) + RELU_LATENCY


# ---------------------------------------------------------------------------------------------
# MaxPool, MaxPoolBackward (rtl/max_pool.py): non-overlapping kernel x kernel windows, one window
# element (`lanes` channels) per beat; forward a window's max and argmax, backward the error routed.
# ---------------------------------------------------------------------------------------------

MAXPOOL_LATENCY = 2
"""Forward: cycles from a window's last beat accepted to its result valid (input register; compare
into the output buffer), one element beat per cycle. Backward: from a window's beat accepted to the
first of its kernel**2 output beats valid (holding register; select into the output buffer), one
output beat per cycle."""


def maxpool_cycles(windows: int, kernel: int) -> int:
    """From the first beat accepted to the last output beat valid (inclusive) for `windows` windows
    of `lanes` channels streamed back to back, forward or backward: kernel**2 beats per window on
    the element side."""
    return windows * kernel * kernel + MAXPOOL_LATENCY


# ---------------------------------------------------------------------------------------------
# LossGradient (rtl/loss_gradient.py): SPEC's integer cross-entropy gradient, one cfg beat (s,
# classes) then one beat per sample row, the errors out `lanes` per beat through ShiftRound.
# A row at a time: the walk for its largest logit, the terms and their sum, one division per
# class, the label's correction into the lanes.
# ---------------------------------------------------------------------------------------------

LOSS_TERMS_LATENCY = MULTIPLIER_LATENCY + 5
"""Cycles from a logit offered to its term t_i: the int8 products, their sum, coarse and fine
shifts, the base-2 difference or 2**P + a 2**L, the clip or the square's addition."""

LOSS_DIVIDE_CYCLES = 12
"""Cycles per division (t << 11) // C, one quotient bit each (the quotient is at most 2**11);
divisions run back to back."""

LOSS_DIVIDE_SETUP = 2
"""Cycles from the last term (the row sum final in the next) to the row's first division: the
divider registers the first term less C."""

LOSS_ROW_OVERHEAD = 1 + 1 + LOSS_TERMS_LATENCY + LOSS_DIVIDE_SETUP + 1
"""Cycles of a row beyond its per-class work: the row beat's cycle, the largest logit offered to
the terms ahead of the row's logits, the terms' latency (from the last logit offered to its term
and the row sum), the divider's setup, the last quotient's cycle into its queue."""

LOSS_PACK_LATENCY = 2
"""Cycles from the end of the last row to its final beat taken by ShiftRound: the last corrected
error written into its lane, the beat offered."""


def loss_row_cycles(classes: int) -> int:
    """Cycles from a row beat accepted to the next one accepted, no gaps and no backpressure:
    per class a step of the walk for the largest logit, one of the walk through the terms, a
    division and a corrected error into the lanes; one row at a time."""
    return (LOSS_DIVIDE_CYCLES + 3) * classes + LOSS_ROW_OVERHEAD


def loss_cycles(samples: int, classes: int) -> int:
    """From the cfg beat accepted to the last output beat valid (inclusive) for a samples x
    classes tensor sent with no gaps and taken with no backpressure: the cfg cycle, the rows, the
    packer and the rounding unit (ShiftRound, shift 4)."""
    return 1 + samples * loss_row_cycles(classes) + LOSS_PACK_LATENCY + ROUND_LATENCY


# ---------------------------------------------------------------------------------------------
# Weight- and input-stationary arrays (cost model only; the RTL is output stationary). Built like
# the OS array: skew inside, MULTIPLIER_LATENCY-deep PEs, the next fold's stationary operand loaded
# (rows cycles) behind the current fold, partial sums of K folds added in the output buffer.
# ---------------------------------------------------------------------------------------------

def stationary_folds(k: int, across: int, p: HardwareParams) -> int:
    """Folds of a stationary dataflow: K over the array's rows, `across` over its columns."""
    return ceil(k / p.rows) * ceil(across / p.cols)


def stationary_gemm_cycles(stream: int, k: int, across: int, p: HardwareParams) -> int:
    """Cycles of a WS GEMM (stream = M, across = N) or an IS GEMM (stream = N, across = M): the first
    stationary load, one period of max(stream, rows) per fold, then skew and multiplier drain."""
    return int(blocked_stationary_cycles(stationary_folds(k, across, p), 1, stream, stream, p))


# ---------------------------------------------------------------------------------------------
# Blocked schedules (niti_hw/perf/mapping.py): the same arrays walking a GEMM block by block. One
# block is the schedules above; the formulas take ints or numpy arrays (the mapping search).
# ---------------------------------------------------------------------------------------------

def blocked_tile_cycles(tiles, k_blocks, block_k, last_k, p: HardwareParams):
    """Output stationary, from the first operand beat accepted to the last accepted (inclusive):
    every tile runs once per K block (`k_blocks - 1` of `block_k` beats, one of `last_k`), passes
    back to back at `tile_period`. One K block is `tensor_operand_cycles`."""
    floor = min_tile_cycles(p)
    periods = tiles * ((k_blocks - 1) * np.maximum(block_k, floor) + np.maximum(last_k, floor))
    return periods - np.maximum(last_k, floor) + last_k


def blocked_stationary_cycles(folds, stream_blocks, block_stream, last_stream, p: HardwareParams):
    """WS/IS: the first stationary load, each stationary fold once per block of the streamed
    dimension (one period of max(streamed length, rows)), then skew and multiplier drain."""
    periods = (stream_blocks - 1) * np.maximum(block_stream, p.rows) \
        + np.maximum(last_stream, p.rows)
    return p.rows + folds * periods + p.rows + p.cols - 2 + MULTIPLIER_LATENCY + 1


# ---------------------------------------------------------------------------------------------
# SCALE-Sim 3.0.0 compute cycles ("Total Cycles" of its COMPUTE_REPORT, bandwidth mode CALC, so no
# stalls). Each fold runs on its own: operands skew in, outputs drain, then the next fold starts
# (scalesim/compute/systolic_compute_{os,ws,is}.py build one demand row per cycle; the report gives
# the index of the last row, hence the - 1).
# ---------------------------------------------------------------------------------------------

SCALESIM_DATAFLOWS = {"output_stationary": "os", "weight_stationary": "ws",
                      "input_stationary": "is"}


def scalesim_folds(m: int, n: int, k: int, dataflow: str, p: HardwareParams) -> int:
    """Folds SCALE-Sim maps an M x N x K GEMM onto: OS tiles M x N, WS K x N, IS K x M."""
    rows, cols = {"output_stationary": (m, n), "weight_stationary": (k, n),
                  "input_stationary": (k, m)}[dataflow]
    return ceil(rows / p.rows) * ceil(cols / p.cols)


def scalesim_fold_cycles(m: int, n: int, k: int, dataflow: str, p: HardwareParams) -> int:
    """Demand rows of one fold: OS streams K beats, WS M and IS N, plus fill and drain (WS/IS also
    load the stationary operand, `rows` cycles)."""
    if dataflow == "output_stationary":
        return k + p.rows + p.cols - 2
    stream = m if dataflow == "weight_stationary" else n
    return stream + 2 * p.rows + p.cols - 2


def scalesim_gemm_cycles(m: int, n: int, k: int, dataflow: str, p: HardwareParams) -> int:
    """SCALE-Sim 3.0.0's "Total Cycles" of one GEMM layer (C[M x N] = A[M x K] @ B[K x N])."""
    return scalesim_folds(m, n, k, dataflow, p) * scalesim_fold_cycles(m, n, k, dataflow, p) - 1


# ---------------------------------------------------------------------------------------------
# AxiLiteRegisters (rtl/axi_lite.py): the AXI4-Lite slave of the register map (registers.py);
# ControlRegisters (rtl/control.py): run control (start, busy, done, CYCLES, cfg beat) around it.
# ---------------------------------------------------------------------------------------------

AXI_LITE_LATENCY = 1
"""Cycles from a read's AR handshake to RVALID (the data registered with it), and from the later of
a write's AW and W handshakes to BVALID; RW fields and W1P strobes change with BVALID."""

AXI_LITE_ACCESS_CYCLES = 2
"""Cycles per access when the master accepts each response at once: one write and one read are
outstanding at most, so AWREADY/WREADY (ARREADY) return the cycle after B (R) is taken. Reads
and writes proceed independently."""

CONTROL_START_LATENCY = AXI_LITE_LATENCY + 1
"""Cycles from the write handshake of CTRL.start to STATUS.busy and the cfg beat's valid: the W1P
strobe, then the busy and cfg registers."""


# ---------------------------------------------------------------------------------------------
# Core (rtl/core.py): the sequencer (rtl/sequencer.py) runs a program instruction by instruction
# on the banks (rtl/banks.py) through one engine at a time (rtl/narrow_engine.py, relu_engine.py,
# update_engine.py, loss_engine.py, gemm_engine.py, pool_engine.py, gather_engine.py). Cycles from
# one instruction's first fetch cycle to the next's.
# ---------------------------------------------------------------------------------------------

IMEM_READ_LATENCY = 1
"""The instruction memory's synchronous read: a word one cycle after its address."""

BANK_READ_LATENCY = 3
"""A bank row three cycles after its address: the RAM's synchronous read, its output register (no
logic in front: a block RAM's clock-to-out reaches only a register), then the bank select and sign
extension into a register."""

BANK_WRITE_LATENCY = 1
"""A row on a bank's write port lands in its RAM a cycle later (address, data and mask
registered)."""

WRITE_PORT_LATENCY = 1
"""The core's register between the engines' (and the host's) write ports and the banks': the
selected engine's port, then the bank select, each a cycle of its own."""

FETCH_CYCLES = INSTRUCTION_WORDS + IMEM_READ_LATENCY
"""An instruction's words read one per cycle, the last arriving IMEM_READ_LATENCY later."""

GEOMETRY_CHECK_LATENCY = 11
"""Cycles from a geometry register's new value to its extents (words of the input, the pooled or
convolved output, the im2col columns) and its shape check: nine products one a cycle into one
three-stage multiplier (rtl/geometry.py). No instruction waits for them: the next instruction's
check comes a RETIRE, FETCH, DECODE and PRODUCTS after the geometry is latched (at most that many
cycles)."""

DISPATCH_CYCLES = 4
"""After the fetch: the decode register, the checks' products (summed in part at decode), the
checks' register (alignment, bank bounds, banks, settings), the dispatch (engine start, geometry
latch, END or a refusal)."""

RETIRE_CYCLES = 1
"""After the engine's done: the exponent register, B register and pc updates."""

ENGINE_HANDSHAKE_CYCLES = 2
"""An engine's start cycle (its counters load) and its registered done."""


def stream_beats(m: int, p: HardwareParams) -> int:
    """Bank rows of an `m`-value tensor, one beat each; an empty tensor still takes one beat."""
    return max(1, ceil(m / p.lanes))


def engine_pass_cycles(m: int, unit_latency: int, p: HardwareParams) -> int:
    """One pass of an `m`-value tensor: a row read per cycle, the last row through the bank read
    and the unit into its bank write."""
    return stream_beats(m, p) + BANK_READ_LATENCY + unit_latency


def narrow_cycles(opcode: Opcode, m: int, gradient: bool, p: HardwareParams) -> int:
    """BITWIDTH: a detector pass (B one DETECTOR_LATENCY after the last row). ROUND: a rounding
    pass; a gradient's (keep = KEEP_M_U) follows its own detector pass (k = B - m_u), whose last
    row arrives with the detector's B."""
    detect = engine_pass_cycles(m, DETECTOR_LATENCY, p)
    if opcode == Opcode.BITWIDTH:
        return ENGINE_HANDSHAKE_CYCLES + detect
    replay = engine_pass_cycles(m, ROUND_LATENCY, p)
    return ENGINE_HANDSHAKE_CYCLES + replay + (detect if gradient else 0)


def relu_engine_cycles(m: int, p: HardwareParams) -> int:
    """RELU and RELU_BACKWARD: one pass through the ReLU unit."""
    return ENGINE_HANDSHAKE_CYCLES + engine_pass_cycles(m, RELU_LATENCY, p)


WIDE_UPDATE_GAP = WRITE_PORT_LATENCY + BANK_WRITE_LATENCY
"""Cycles a wide UPDATE's second pass waits after the first pass's last write, so that it reads
that row as written."""


def update_engine_cycles(m: int, weight_bits: int, p: HardwareParams) -> int:
    """UPDATE: one pass through the weight-update unit; wider than 8 bits, a second pass (the
    updated weights back through the unit, their int8 copies out) after WIDE_UPDATE_GAP."""
    update = engine_pass_cycles(m, UPDATE_LATENCY, p)
    copies = WIDE_UPDATE_GAP + engine_pass_cycles(m, UPDATE_LATENCY, p) if weight_bits > 8 else 0
    return ENGINE_HANDSHAKE_CYCLES + update + copies


def loss_engine_cycles(m: int, n: int, p: HardwareParams) -> int:
    """LOSS of m samples of n classes: the first sample's rows read (it starts a bank row), its
    row beat taken by the unit the cycle after the last arrives, then the unit's `loss_cycles`
    but its cfg cycle (the cfg beat is taken while the first sample is read) to the last error
    row's write; every later sample is read while the unit works on the one before."""
    first = stream_beats(n, p) + BANK_READ_LATENCY
    return ENGINE_HANDSHAKE_CYCLES + first + loss_cycles(m, n) - 1


GEMM_IM2COL_STAGES = 3
"""Registers in an im2col word address ((n * H + row) * W + col) * C + c: a product and a sum
each; every GEMM operand's elements pass as many, im2col or not, so A and B stay in step."""

GEMM_ADDRESS_LATENCY = 2 + GEMM_IM2COL_STAGES
"""A GEMM operand walk's first word on its bank port after the engine's start: the walk's counters
load, the im2col stages, then its address register (rtl/gemm_walk.py)."""

GEMM_BEAT_LATENCY = 1
"""A beat's last value lands in the beat register; the array takes the beat the cycle after."""

GEMM_DRAIN_LATENCY = 2
"""A drained row into the drain buffer, then rotated onto the bank rows it covers."""


def gemm_beat_slots(p: HardwareParams) -> int:
    """Cycles to gather one beat: a word of A and one of B per cycle, rows of A and cols of B."""
    return max(p.rows, p.cols)


def gemm_row_writes(p: HardwareParams) -> int:
    """Bank rows a drained row of cols values may cover at any word offset (one write each)."""
    return p.cols // p.lanes + 1


def gemm_tile_period(k: int, p: HardwareParams) -> int:
    """Cycles between tiles: gathering K beats, or writing back a tile, whichever is longer (the
    next tile gathers while the previous one drains)."""
    return max(k * gemm_beat_slots(p), p.rows * gemm_row_writes(p))


def gemm_engine_cycles(m: int, n: int, k: int, p: HardwareParams) -> int:
    """GEMM: tiles `gemm_tile_period` apart; the last tile's last beat, its drain through the
    array, then its rows written back. Counted from the start cycle (0) to done."""
    period = gemm_tile_period(k, p)
    last_beat = ((tile_count(m, n, p) - 1) * period + GEMM_ADDRESS_LATENCY
                 + k * gemm_beat_slots(p) - 1 + BANK_READ_LATENCY + GEMM_BEAT_LATENCY)
    last_write = (last_beat + first_row_latency(p) + GEMM_DRAIN_LATENCY
                  + p.rows * gemm_row_writes(p) - 1)
    return last_write + 2  # done the cycle after; cycles 0..done


WINDOW_WALK_LATENCY = 6
"""Cycles from a POOL walk's counters to its element (address, flags) out of rtl/walks.py: the
address ((n * H + y) * W + x) * C + c, each step a product register and a sum register."""

GATHER_WALK_LATENCY = 10
"""The same for the gather walk of COL2IM and POOL_BACKWARD: ((((n * OH + oh) * OW + ow) * KH +
kh) * KW + kw) * C + c (the pooled tensor's: the kernel steps multiply by 1 and add 0)."""

WORD_PICK_LATENCY = 1
"""A walking engine's word: its lane picked from the bank row into a register
(rtl/word_stream.py), BANK_READ_LATENCY after the row's read."""

GATHER_SUM_LATENCY = 1
"""A gather's sum register: a pixel's sum is written the cycle after its last element arrives."""


def candidates(kernel: int, stride: int) -> int:
    """Windows along one axis that can cover an input position: ceil(kernel / stride)."""
    return -(-kernel // stride)


def pool_engine_cycles(g: Geometry) -> int:
    """POOL: every pooled word's window walked, kernel**2 input words per output word, one a
    cycle, the last through the bank read, the lane pick and `MaxPool` into its write."""
    walk = g.windows * g.channels * g.kernel_h * g.kernel_w
    return (ENGINE_HANDSHAKE_CYCLES + WINDOW_WALK_LATENCY + walk + BANK_READ_LATENCY
            + WORD_PICK_LATENCY + MAXPOOL_LATENCY)


def gather_engine_cycles(g: Geometry) -> int:
    """COL2IM and POOL_BACKWARD: every input word gathers from its candidate windows, a
    ceil(kh / stride) x ceil(kw / stride) walk per word (candidates out of range cost their cycle
    too), one a cycle, the last through the bank read, the lane pick and the sum into its
    write."""
    walk = (g.batch * g.height * g.width * g.channels * candidates(g.kernel_h, g.stride)
            * candidates(g.kernel_w, g.stride))
    return (ENGINE_HANDSHAKE_CYCLES + GATHER_WALK_LATENCY + walk + BANK_READ_LATENCY
            + WORD_PICK_LATENCY + GATHER_SUM_LATENCY)


GEOMETRY_ENGINES = {Opcode.POOL: (Opcode.POOL_GEOMETRY, pool_engine_cycles),
                    Opcode.POOL_BACKWARD: (Opcode.POOL_GEOMETRY, gather_engine_cycles),
                    Opcode.COL2IM: (Opcode.CONV_GEOMETRY, gather_engine_cycles)}
"""The engines that walk a geometry: the geometry register each reads, and its cycles."""


def engine_cycles(item, p: HardwareParams, geometry: dict | None = None) -> int:
    """Cycles of the engine that runs `item` (an `isa.Instruction` of BITWIDTH, ROUND, RELU,
    RELU_BACKWARD, UPDATE, LOSS, GEMM, POOL, POOL_BACKWARD or COL2IM), from its start to its done,
    both included; `geometry` maps CONV_GEOMETRY and POOL_GEOMETRY to the `isa.Geometry` in force."""
    if item.opcode in GEOMETRY_ENGINES:
        register, cycles = GEOMETRY_ENGINES[item.opcode]
        if register not in (geometry or {}):
            raise ValueError(f"{item.opcode.name} walks the {register.name} in force: pass it "
                             f"in `geometry`")
        return cycles(geometry[register])
    if item.opcode in (Opcode.BITWIDTH, Opcode.ROUND):
        return narrow_cycles(item.opcode, item.m, item.keep == KEEP_M_U, p)
    if item.opcode in (Opcode.RELU, Opcode.RELU_BACKWARD):
        return relu_engine_cycles(item.m, p)
    if item.opcode == Opcode.UPDATE:
        return update_engine_cycles(item.m, item.n, p)
    if item.opcode == Opcode.LOSS:
        return loss_engine_cycles(item.m, item.n, p)
    if item.opcode == Opcode.GEMM:
        return gemm_engine_cycles(item.m, item.n, item.k, p)
    raise ValueError(f"the core has no engine for {item.opcode.name} yet")


def instruction_cycles(item, p: HardwareParams, geometry: dict | None = None) -> int:
    """Cycles from an instruction's first fetch cycle to the next instruction's (END and a refused
    instruction: to the cycle `done` or `error` rises); `geometry` as `engine_cycles` takes it."""
    issue = FETCH_CYCLES + DISPATCH_CYCLES
    if item.opcode == Opcode.END:
        return issue
    if item.opcode in GEOMETRY_OPCODES:
        return issue + RETIRE_CYCLES
    return issue + engine_cycles(item, p, geometry) + RETIRE_CYCLES


def each_instruction_cycles(items, p: HardwareParams) -> list[int]:
    """`instruction_cycles` of each instruction up to and including END, each under the geometry
    the instructions before it set."""
    cycles, geometry = [], {}
    for item in items:
        cycles.append(instruction_cycles(item, p, geometry))
        if item.opcode in GEOMETRY_OPCODES:
            geometry[item.opcode] = item
        if item.opcode == Opcode.END:
            return cycles
    raise ValueError("the program has no END instruction")


def program_cycles(items, p: HardwareParams) -> int:
    """A run up to and including END, from the cycle `start` is taken to the cycle `done` rises."""
    return 1 + sum(each_instruction_cycles(items, p))  # 1: the start cycle


# ---------------------------------------------------------------------------------------------
# StreamLoader (rtl/stream_loader.py): AXI4-Stream frames (stream_frames.py) into the banks, and
# READ frames answered on the master stream by StreamReader.
# ---------------------------------------------------------------------------------------------

STREAM_CHECK_CYCLES = 2
"""Cycles after a frame's header in which the slave takes no beat: op, bank and range are checked
from the registered header into a register (the range's adder and compare), then acted on."""

STREAM_WRITE_LATENCY = 2
"""A payload beat taken in cycle t is in its bank from cycle t + 2 (a write register, then the
RAM's write)."""

STREAM_READ_LATENCY = STREAM_CHECK_CYCLES + 4
"""Cycles from a READ header's last beat taken to its first beat valid on the master stream: the
checks, the reader taking the command, the RAM's read, a register behind the RAM (its clock-to-out
leaves no time for the bank mux), the output buffer."""


def stream_frame_cycles(words: int, header_beats: int) -> int:
    """Cycles a frame of `words` beats (a WRITE's payload or a READ's answer) holds the slave at
    full rate, TVALID high throughout and the master stream always ready: the next frame's first
    beat is taken that many cycles after this one's first. One beat per cycle otherwise (the slave
    takes no beat while a READ's addresses are issued, so a WRITE never overtakes a READ)."""
    return header_beats + STREAM_CHECK_CYCLES + words


def stream_read_cycles(words: int, header_beats: int) -> int:
    """From a READ frame's first header beat taken to its last answer beat valid (inclusive), at
    full rate; one answer beat per cycle."""
    return header_beats + STREAM_READ_LATENCY + words - 1


# ---------------------------------------------------------------------------------------------
# CoreTop (rtl/core_top.py): the same frames into the core's own banks, through its host ports.
# ---------------------------------------------------------------------------------------------

CORE_ANSWER_FIFO_LATENCY = 2
"""Cycles from a bank row's arrival to its beat valid on the master stream: the answer FIFO's
write, then its output register."""

CORE_STREAM_READ_LATENCY = STREAM_CHECK_CYCLES + 1 + BANK_READ_LATENCY + CORE_ANSWER_FIFO_LATENCY
"""Cycles from a READ header's last beat taken to its first beat valid on the core top's master
stream: the checks, the reader taking the command, the banks' read, the answer FIFO."""
