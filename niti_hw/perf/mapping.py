"""Mappings of one GEMM onto the array and its SRAMs: the schedule as data, and what it costs.

A GEMM C[M x N] = A[M x K] @ B[K x N] runs on the rows x cols array in `params.dataflow`. A mapping
cuts it into blocks of `block_m x block_n x block_k` and walks the blocks in `order` (the three
block loops, outer to inner, a permutation of "mnk"); inside a block the array walks its own folds:

| dataflow | tile loops inside a block (outer to inner) | one array step covers (m, n, k) | resident in the PEs |
|---|---|---|---|
| output stationary | m tiles of `rows`, n tiles of `cols`, k streamed | (rows, cols, 1) | C |
| weight stationary | n tiles of `cols`, k tiles of `rows`, m streamed | (1, cols, rows) | B |
| input stationary | m tiles of `cols`, k tiles of `rows`, n streamed | (cols, 1, rows) | A |

The RTL's own schedule (`rtl_mapping`) is one block: the array's fold order over the whole GEMM.

**Traffic, one rule for every loop nest.** An operand is fetched from DRAM once, times the trip
count of every loop that does not index it (A: the n loops, B: the m loops, C: the k loops) whose
inner footprint of that operand does not fit half its SRAM (the other half takes the next block:
double buffering). The footprint is what the loops inside touch: the extent of each dimension
they cover, A's capped at the values its source holds (an im2col A is fetched as its input tensor).
The streamed loop never refetches the operand resident in the PEs. C's refetches are partial sums:
a K split outside the PEs adds partial sums in the ofmap SRAM (`partial_passes`), and a pass whose
C footprint does not fit goes to DRAM and back. The rule reproduces the one-schedule model this
replaces exactly (A of OS refetched per column tile unless a row block fits, B per row block
unless all of B fits, WS/IS partial sums spilled unless a fold's column fits).

**Legal mappings** (`legal`): each block's A and B fit half their SRAM, and so do the partial sums
that must wait there when K is split outside the PEs (a block of C across K blocks, or WS/IS's
column of partial sums across a block's K folds). The RTL schedule is costed as it is, legal or not (its blocks stream). NITI's order,
the whole int32 tensor before its exponent, is not a mapping choice: every mapping leaves the
final int32 result in the tensor buffer (and DRAM beyond it), which `niti_hw.perf.cost` charges.

**Cycles.** Output stationary: tile passes of `block_k` beats back to back at
`timing.tile_period` (a K split adds passes, each drained into the partial sums; the adder sits on
the drain, so no cycles of its own); WS and IS: one period of max(streamed length, rows) per
stationary fold (`timing.blocked_stationary_cycles`). One block is the RTL's timing exactly.

Everything here takes numpy arrays of block sizes as well as ints, so the search
(`niti_hw.perf.search`) costs thousands of candidates per GEMM in one pass through this same code.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import permutations

import numpy as np

from niti_hw.params import HardwareParams
from niti_hw.perf import timing
from niti_hw.perf.tiling import ROW_MAJOR, TileWalk

ORDERS = tuple("".join(p) for p in permutations("mnk"))
OPERAND_DIMS = {"a": "mk", "b": "kn", "c": "mn"}
STATIONARY = {"output_stationary": "c", "weight_stationary": "b", "input_stationary": "a"}


@dataclass(frozen=True)
class Mapping:
    """Block loop order (outer to inner) and block sizes of one GEMM."""

    order: str
    block_m: int
    block_n: int
    block_k: int

    def __post_init__(self) -> None:
        if self.order not in ORDERS:
            raise ValueError(f"mapping order must be a permutation of 'mnk'; got {self.order!r}")
        for name in ("block_m", "block_n", "block_k"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"mapping {name} must be a positive int; got {value!r}")

    @property
    def label(self) -> str:
        return f"{self.order}:{self.block_m}x{self.block_n}x{self.block_k}"

    @classmethod
    def from_label(cls, label: str) -> Mapping:
        """'nmk:16x32x576' (a report's `mapping` column) -> Mapping("nmk", 16, 32, 576)."""
        order, blocks = label.split(":")
        return cls(order, *(int(v) for v in blocks.split("x")))

    def as_dict(self) -> dict:
        return {"order": self.order, "block_m": int(self.block_m), "block_n": int(self.block_n),
                "block_k": int(self.block_k)}


def rtl_mapping(m: int, n: int, k: int) -> Mapping:
    """The RTL's schedule: one block, the array's own fold order over the whole GEMM."""
    return Mapping("mnk", m, n, k)


def _ceil(a, b):
    return -(-a // b)


@dataclass(frozen=True)
class Loop:
    dim: str
    trip: object      # int or array
    cover: object     # extent of `dim` the loop covers (block size, or the whole dimension)
    streamed: bool = False


def unit_step(dataflow: str, p: HardwareParams) -> dict[str, int]:
    """Extent of (m, n, k) one array step covers."""
    return {"output_stationary": {"m": p.rows, "n": p.cols, "k": 1},
            "weight_stationary": {"m": 1, "n": p.cols, "k": p.rows},
            "input_stationary": {"m": p.cols, "n": 1, "k": p.rows}}[dataflow]


class Blocks:
    """Block sizes of a GEMM clipped to it, with trip counts and edge blocks (ints or arrays)."""

    def __init__(self, m, n, k, mapping_order: str, bm, bn, bk):
        self.dims = {"m": m, "n": n, "k": k}
        self.order = mapping_order
        self.size = {d: np.minimum(b, self.dims[d]) for d, b in zip("mnk", (bm, bn, bk))}
        self.trips = {d: _ceil(self.dims[d], self.size[d]) for d in "mnk"}
        self.last = {d: self.dims[d] - (self.trips[d] - 1) * self.size[d] for d in "mnk"}

    def tiles(self, dim: str, unit: int):
        """Array tiles of `unit` along `dim` over the whole GEMM, edge blocks included."""
        return (self.trips[dim] - 1) * _ceil(self.size[dim], unit) + _ceil(self.last[dim], unit)


def loop_nest(blocks: Blocks, dataflow: str, p: HardwareParams) -> list[Loop]:
    """Block loops in the mapping's order, then the dataflow's tile loops (outer to inner)."""
    nest = [Loop(d, blocks.trips[d], blocks.dims[d]) for d in blocks.order]
    s = blocks.size
    if dataflow == "output_stationary":
        nest += [Loop("m", _ceil(s["m"], p.rows), s["m"]), Loop("n", _ceil(s["n"], p.cols), s["n"]),
                 Loop("k", s["k"], s["k"], streamed=True)]
    elif dataflow == "weight_stationary":
        nest += [Loop("n", _ceil(s["n"], p.cols), s["n"]), Loop("k", _ceil(s["k"], p.rows), s["k"]),
                 Loop("m", s["m"], s["m"], streamed=True)]
    else:
        nest += [Loop("m", _ceil(s["m"], p.cols), s["m"]), Loop("k", _ceil(s["k"], p.rows), s["k"]),
                 Loop("n", s["n"], s["n"], streamed=True)]
    return nest


def refetches(nest: list[Loop], operand: str, unit: dict, capacity: float, bytes_per_value: int,
              source_values, stationary: bool):
    """How many times `operand` crosses between DRAM and its SRAM: the product of the trips of the
    loops that do not index it and whose inner footprint (bytes) does not fit `capacity`."""
    dims = OPERAND_DIMS[operand]
    extent = dict(unit)
    times = 1
    for loop in reversed(nest):
        if loop.dim not in dims:
            if not (loop.streamed and stationary):
                footprint = np.minimum(extent[dims[0]] * extent[dims[1]], source_values)
                times = times * np.where(footprint * bytes_per_value > capacity, loop.trip, 1)
            continue
        extent[loop.dim] = np.maximum(extent[loop.dim],
                                      np.minimum(extent[loop.dim] * loop.trip, loop.cover))
    return times


@dataclass
class GemmCost:
    """What one mapping of one GEMM costs, before the result's own storage (ints or arrays).

    Bytes: `fetch_*` DRAM -> SRAM (each also an SRAM write), `read_*` SRAM -> array,
    `partial_sram` partial-sum bytes written to and read back from the ofmap SRAM (each way),
    `partial_dram` the same bytes that went to DRAM and back (each way).
    """

    fetch_a: object
    fetch_b: object
    read_a: object
    read_b: object
    partial_sram: object
    partial_dram: object
    legal: object


def partial_passes(blocks: Blocks, dataflow: str, p: HardwareParams):
    """Accumulation passes of C outside the PEs: the K split (OS), or every K fold (WS, IS)."""
    if dataflow == "output_stationary":
        return blocks.trips["k"]
    return blocks.tiles("k", p.rows)


def array_cycles(blocks: Blocks, dataflow: str, p: HardwareParams):
    """The array's cycles under a blocked schedule: output stationary from the first operand beat
    accepted to the last (the datapath's drain is the caller's); WS and IS the whole stationary
    schedule, first load to last product."""
    if dataflow == "output_stationary":
        return timing.blocked_tile_cycles(blocks.tiles("m", p.rows) * blocks.tiles("n", p.cols),
                                          blocks.trips["k"], blocks.size["k"], blocks.last["k"], p)
    if dataflow == "weight_stationary":
        return timing.blocked_stationary_cycles(
            blocks.tiles("k", p.rows) * blocks.tiles("n", p.cols), blocks.trips["m"],
            blocks.size["m"], blocks.last["m"], p)
    return timing.blocked_stationary_cycles(
        blocks.tiles("k", p.rows) * blocks.tiles("m", p.cols), blocks.trips["n"],
        blocks.size["n"], blocks.last["n"], p)


def gemm_cost(m: int, n: int, k: int, order: str, bm, bn, bk, p: HardwareParams,
              a_values: int, b_values: int, operand_bytes: int, acc_bytes: int) -> GemmCost:
    """Traffic and legality of mapping(s) (order, bm, bn, bk) of an M x N x K GEMM
    whose A is gathered from `a_values` stored values and B from `b_values`."""
    df = p.dataflow
    blocks = Blocks(m, n, k, order, bm, bn, bk)
    nest = loop_nest(blocks, df, p)
    unit = unit_step(df, p)
    half = {"a": p.ifmap_sram_kib * 512, "b": p.filter_sram_kib * 512, "c": p.ofmap_sram_kib * 512}
    stationary = STATIONARY[df]
    times_a = refetches(nest, "a", unit, half["a"], operand_bytes, a_values, stationary == "a")
    times_b = refetches(nest, "b", unit, half["b"], operand_bytes, b_values, stationary == "b")
    times_c = refetches(nest, "c", unit, half["c"], acc_bytes, m * n, stationary == "c")
    passes = partial_passes(blocks, df, p)
    c_bytes = m * n * acc_bytes
    if df == "output_stationary":
        read_a = m * k * blocks.tiles("n", p.cols)
        read_b = k * n * blocks.tiles("m", p.rows)
    elif df == "weight_stationary":
        read_a = m * k * blocks.tiles("n", p.cols)
        read_b = k * n * blocks.trips["m"]
    else:
        read_a = m * k * blocks.trips["n"]
        read_b = k * n * blocks.tiles("m", p.cols)
    s = blocks.size
    # Partial sums to hold: a block's C across K blocks; else WS/IS's column (row) of one fold.
    fold_partials = {"output_stationary": 0, "weight_stationary": s["m"] * p.cols,
                     "input_stationary": p.cols * s["n"]}[df]
    held = np.where(blocks.trips["k"] > 1, s["m"] * s["n"], fold_partials)
    legal = ((np.minimum(s["m"] * s["k"], a_values) * operand_bytes <= half["a"])
             & (np.minimum(s["k"] * s["n"], b_values) * operand_bytes <= half["b"])
             & ((passes == 1) | (held * acc_bytes <= half["c"])))
    return GemmCost(
        fetch_a=a_values * operand_bytes * times_a,
        fetch_b=b_values * operand_bytes * times_b,
        read_a=read_a * operand_bytes,
        read_b=read_b * operand_bytes,
        partial_sram=(passes - 1) * c_bytes,
        partial_dram=(np.maximum(times_c, 1) - 1) * c_bytes,
        legal=legal,
    )


def walkable(blocks: Blocks, p: HardwareParams):
    """Whether some `TileWalk` runs these blocks on the datapath (ints or arrays): output
    stationary, no K split, and blocks of whole array tiles or of the whole dimension."""
    whole_tiles = [(blocks.trips[d] == 1) | (blocks.size[d] % unit == 0)
                   for d, unit in (("m", p.rows), ("n", p.cols))]
    return (p.dataflow == "output_stationary") & (blocks.trips["k"] == 1) \
        & whole_tiles[0] & whole_tiles[1]


def tile_walk(mapping: Mapping, m: int, n: int, k: int, p: HardwareParams) -> TileWalk | None:
    """The datapath's tile order (`TileWalk`) that runs this mapping, or None where no walk does.

    Output stationary with the whole K in the PEs (no partial sums): the block loops then walk the
    output tiles. Blocks must hold whole array tiles (or the whole dimension), so the tiles are the
    tensor's own. With m outside n, a band is a block's tile rows and a block its tile columns;
    with n outside m, the m blocks of a column follow one another, so the band is the whole
    tensor. A walk that visits the tiles row by row anyway is `ROW_MAJOR`.
    """
    blocks = Blocks(m, n, k, mapping.order, mapping.block_m, mapping.block_n, mapping.block_k)
    if not walkable(blocks, p):
        return None
    size, trips = blocks.size, blocks.trips
    if trips["n"] == 1 or blocks.tiles("m", p.rows) == 1:
        return ROW_MAJOR
    n_outside = mapping.order.index("n") < mapping.order.index("m")
    band = 0 if n_outside or trips["m"] == 1 else int(size["m"] // p.rows)
    return ROW_MAJOR if band == 1 else TileWalk(band, int(size["n"] // p.cols))


def runs_on_rtl(mapping: Mapping, m: int, n: int, k: int, p: HardwareParams) -> bool:
    """Whether the RTL tensor datapath runs this GEMM on this schedule: a tile walk it takes
    (`tile_walk`: output stationary, no partial sums), shape and K within its cfg and
    accumulator, and the whole int32 result in its tensor buffer (the datapath has no DRAM port to
    spill to)."""
    limit = 1 << timing.TENSOR_DIM_BITS
    return (tile_walk(mapping, m, n, k, p) is not None
            and m < limit and n < limit and k <= p.max_k and m * n <= p.tensor_buffer_words)
