"""Mapping search: the mapping of each GEMM that costs least, among the legal ones and the RTL's.

Candidates (`candidate_blocks`): for each dimension, one block size per number of blocks t, the
smallest that makes t blocks (ceil(D / t)) and that size rounded up to whole array tiles. A larger
block with the same count has the same trip counts and a larger footprint, so it never fits where
the smaller one does not; the two sizes per count keep both the tile-aligned and the tight
footprint. Every count is tried while a dimension has at most `EXHAUSTIVE_TILES` array tiles; above
that the counts 1..16 and a geometric ladder (ratio 2^(1/4)) up to the tile count (heuristic).
Every order of the three block loops, every legal combination (each block fits half its SRAM, see
`niti_hw.perf.mapping`) and the RTL's schedule are costed in one vectorised pass, through the same
pricing the report uses, and the least objective wins (ties go to the RTL's schedule, then to a
mapping the datapath runs as a tile walk, `mapping.walkable`, then to the first order of `ORDERS`
and the smallest blocks).

Objectives: "cycles" (compute + DRAM stall of the GEMM's row), "energy", "edp" (their product);
ties on the objective go to the lower energy (cycles for "energy").
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from niti_hw.params import HardwareParams
from niti_hw.perf.mapping import ORDERS, Blocks, Mapping, rtl_mapping, unit_step, walkable

OBJECTIVES = ("cycles", "energy", "edp")
EXHAUSTIVE_TILES = 48
LADDER_RATIO = 2 ** 0.25


def block_counts(tiles: int) -> np.ndarray:
    """Numbers of blocks to try along a dimension of `tiles` array tiles."""
    if tiles <= EXHAUSTIVE_TILES:
        return np.arange(1, tiles + 1)
    ladder = np.unique(np.round(LADDER_RATIO ** np.arange(
        int(np.log(tiles) / np.log(LADDER_RATIO)) + 1)).astype(np.int64))
    return np.unique(np.concatenate([np.arange(1, 17), ladder, [tiles]]))


def candidate_blocks(dim: int, unit: int) -> np.ndarray:
    """Block sizes to try along a dimension of `dim` values whose array tile is `unit` wide."""
    tiles = -(-dim // unit)
    counts = block_counts(tiles)
    tight = -(-dim // counts)
    aligned = np.minimum(-(-tight // unit) * unit, dim)
    return np.unique(np.concatenate([tight, aligned]))


def objective_values(costs: dict, objective: str) -> tuple:
    """(objective, tie-break) of priced candidates: least cycles then least energy, least energy
    then least cycles, or least EDP then least energy."""
    cycles, energy = costs["cycles"], costs["energy_pj"]
    if objective == "cycles":
        return cycles, energy
    if objective == "energy":
        return energy, cycles
    return cycles * energy, energy


def best_mapping(op, params: HardwareParams, price: Callable[[Mapping], dict],
                 objective: str = "cycles", walks_only: bool = False) -> Mapping:
    """The mapping of GEMM `op` with the least `objective` under `price` (a function of a Mapping,
    whose block sizes may be arrays, returning the row's costs; see `niti_hw.perf.cost`); with
    `walks_only`, among the mappings the datapath runs as a tile walk (and the RTL's schedule)."""
    if objective not in OBJECTIVES:
        raise ValueError(f"objective must be one of {OBJECTIVES}; got {objective!r}")
    m, n, k = op.m, op.n, op.k
    best = rtl_mapping(m, n, k)
    best_key = (*(float(v) for v in objective_values(price(best), objective)),
                not walkable(Blocks(m, n, k, best.order, m, n, k), params))
    unit = unit_step(params.dataflow, params)
    grids = np.meshgrid(candidate_blocks(m, unit["m"]), candidate_blocks(n, unit["n"]),
                        candidate_blocks(k, unit["k"]), indexing="ij")
    bm, bn, bk = (g.ravel() for g in grids)
    for order in ORDERS:
        costs = price(_ArrayMapping(order, bm, bn, bk))
        off_rtl = ~np.broadcast_to(walkable(Blocks(m, n, k, order, bm, bn, bk), params), bm.shape)
        legal = np.broadcast_to(costs["legal"], bm.shape) & ~(off_rtl & walks_only)
        if not legal.any():
            continue
        primary, secondary = (np.broadcast_to(v, bm.shape).astype(float)
                              for v in objective_values(costs, objective))
        primary = np.where(legal, primary, np.inf)
        secondary = np.where(primary == primary.min(), secondary, np.inf)
        i = int(np.argmin(np.where(secondary == secondary.min(), off_rtl, 2)))
        key = (float(primary[i]), float(secondary[i]), bool(off_rtl[i]))
        if key < best_key:
            best_key = key
            best = Mapping(order, int(bm[i]), int(bn[i]), int(bk[i]))
    return best


class _ArrayMapping:
    """A Mapping whose block sizes are arrays: one candidate per element (no validation)."""

    def __init__(self, order, bm, bn, bk):
        self.order, self.block_m, self.block_n, self.block_k = order, bm, bn, bk
