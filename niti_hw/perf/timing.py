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

from niti_hw.params import HardwareParams

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
# Datapath (rtl/datapath.py): array -> serialiser -> BitwidthDetector -> two-bank tile buffer ->
# ShiftRound, the bitwidth taken per rows x cols tile.
# ---------------------------------------------------------------------------------------------

K_LATCH = 1
"""Cycle from the detector's B to the bank's k register."""

BANK_TURNAROUND = 3
"""Cycles a bank is lost between its replay ending and its next replay starting (it is refilled
only after the replay ends, and the replay waits for the detector's B)."""


def beats_per_tile(p: HardwareParams) -> int:
    """`lanes`-wide beats of one rows x cols tile: the serialiser's and the replay's length."""
    return p.rows * p.cols // p.lanes


def first_out_latency(p: HardwareParams) -> int:
    """Cycles from a tile's last operand beat to its first rounded beat (from idle).

    Array drain to row 0, then every row serialised into `lanes`-wide beats and buffered while the
    detector sees them, the detector result, one cycle to latch k, then the rounding pipeline.
    """
    return first_row_latency(p) + beats_per_tile(p) + DETECTOR_LATENCY + K_LATCH + ROUND_LATENCY


def drain_stall(p: HardwareParams) -> int:
    """Array cycles lost per tile when the serialiser takes cols/lanes cycles per row (measured):
    the array's output buffer absorbs two rows."""
    return max(0, p.rows - 2) * (p.cols // p.lanes - 1)


def datapath_tile_cycles(k: int, p: HardwareParams) -> int:
    """Array-side cycles per tile of the Datapath: max(K, min_tile_cycles) + drain_stall, at least
    the replay of rows*cols/lanes beats."""
    return max(tile_period(k, p) + drain_stall(p), beats_per_tile(p))


def tile_pair_cycles(p: HardwareParams, depth: int) -> int:
    """Steady-state cycles for two back-to-back tiles of K = depth (no gaps, no backpressure).

    a = datapath_tile_cycles. From a >= replay + 2 one tile per a cycles; below that the banks turn
    round too slowly and tiles alternate replay + BANK_TURNAROUND and a cycles (see Datapath).
    """
    replay = beats_per_tile(p)
    a = datapath_tile_cycles(depth, p)
    return 2 * a if a >= replay + 2 else replay + BANK_TURNAROUND + a


# ---------------------------------------------------------------------------------------------
# Whole-tensor NITI flow (cost model): the array drains through the `lanes`-wide serialiser into the
# int32 tensor buffer while the BitwidthDetector sees every value; a rounding pass then replays the
# buffer. Until the RTL tensor datapath states its measured formulas here, these reuse the tile
# Datapath's measured array-side rate (datapath_tile_cycles).
# ---------------------------------------------------------------------------------------------

def tensor_gemm_cycles(m: int, n: int, k: int, p: HardwareParams) -> int:
    """Cycles of one GEMM drained into the tensor buffer: tiles at the Datapath's array-side rate,
    the last tile's rows serialised `lanes` values per cycle."""
    tiles = tile_count(m, n, p)
    last_beat = (k - 1) + (tiles - 1) * datapath_tile_cycles(k, p)
    return last_beat + first_row_latency(p) + beats_per_tile(p) + drain_stall(p)


def detect_tail_cycles() -> int:
    """Cycles after a tensor's last value until its k is known, when B is taken on the drain."""
    return DETECTOR_LATENCY + K_LATCH


# ---------------------------------------------------------------------------------------------
# Weight- and input-stationary arrays (cost model only; the RTL is output stationary). Built like
# the OS array: skew inside, MULTIPLIER_LATENCY-deep PEs, the next fold's stationary operand loaded
# (rows cycles) behind the current fold, partial sums of K folds added in the output buffer.
# ---------------------------------------------------------------------------------------------

def stationary_folds(stream: int, k: int, across: int, p: HardwareParams) -> int:
    """Folds of a stationary dataflow: K over the array's rows, `across` over its columns."""
    return ceil(k / p.rows) * ceil(across / p.cols)


def stationary_gemm_cycles(stream: int, k: int, across: int, p: HardwareParams) -> int:
    """Cycles of a WS GEMM (stream = M, across = N) or an IS GEMM (stream = N, across = M): the first
    stationary load, one period of max(stream, rows) per fold, then skew and multiplier drain."""
    folds = stationary_folds(stream, k, across, p)
    return p.rows + folds * max(stream, p.rows) + p.rows + p.cols - 2 + MULTIPLIER_LATENCY + 1


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
