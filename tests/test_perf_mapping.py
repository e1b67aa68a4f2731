"""perf.mapping and perf.search: traffic of small GEMMs under several mappings by hand, the bounds
no mapping beats, the search against brute force, and the RTL's schedule as one mapping."""

from itertools import product

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from niti_hw.params import DATAFLOWS, HardwareParams
from niti_hw.perf import timing
from niti_hw.perf.bounds import capacity_bound_bytes, compute_bound_cycles
from niti_hw.perf.cost import (DEFAULT_PJ, compulsory_bytes, estimate, gemm_cycles, op_costs,
                               op_traffic, sram_energy_table)
from niti_hw.perf.lowering import ACC, ACT, Op, gemm_op, lower
from niti_hw.perf.mapping import (ORDERS, Blocks, Mapping, array_cycles, gemm_cost, rtl_mapping,
                                  runs_on_rtl, tile_walk)
from niti_hw.perf.search import best_mapping, candidate_blocks
from niti_hw.perf.tiling import ROW_MAJOR, TileWalk, tile_grid

SMALL = HardwareParams(rows=4, cols=4, lanes=4, ifmap_sram_kib=1, filter_sram_kib=1,
                       ofmap_sram_kib=1, tensor_buffer_words=4096)
"""4x4 array, 1 KiB SRAMs: 512 bytes of each hold a block (the other half the next one)."""


def gemm(m, n, k, a_values=None):
    return Op("g", "forward", "gemm", m, n, k,
              reads=((ACT, a_values or m * k), (ACT, k * n)), writes=((ACC, m * n),))


def fetched(op, mapping, params=SMALL):
    t = op_traffic(op, params, mapping=mapping)
    return t.dram_reads.get("ifmap", 0), t.dram_reads.get("filter", 0), t.legal


def test_output_stationary_traffic_by_hand():
    """A and B of 32 x 32 x 32 are 1,024 bytes each; a block of 512 fits."""
    op = gemm(32, 32, 32)
    # RTL schedule: a 4-row block of A (4 x 32 = 128 B) fits, so A is read once; all of B (1,024 B)
    # does not, so B comes again for each of the 8 row blocks.
    assert fetched(op, rtl_mapping(32, 32, 32))[:2] == (1024, 8 * 1024)
    # n outer, m, k inner, blocks 16 x 16 x 32: B's 32 x 16 column block (512 B) stays while m
    # walks, so B is read once; A's whole 32 x 32 (1,024 B) is walked once per column block: twice.
    assert fetched(op, Mapping("nmk", 16, 16, 32)) == (2 * 1024, 1024, True)
    # m outer: A's 16 x 32 row block (512 B) stays while n walks; B once per row block: twice.
    assert fetched(op, Mapping("mnk", 16, 16, 32)) == (1024, 2 * 1024, True)
    # A 32 x 32 block of A (1,024 B) does not fit half the SRAM: not a legal mapping.
    assert fetched(op, Mapping("nmk", 32, 16, 32))[2] == False  # noqa: E712 (numpy bool)


def test_a_k_split_adds_partial_sums_in_the_ofmap_sram():
    """OS 8 x 8 x 64 in K blocks of 16: four passes per tile, three of them add 64 int32 partial
    sums (256 B) in the ofmap SRAM, which holds them (256 <= 512): none reach DRAM. The passes run
    back to back as the one-block schedule would (4 tiles x 4 passes x 16 beats)."""
    cost = gemm_cost(8, 8, 64, "mnk", 8, 8, 16, SMALL, 8 * 64, 64 * 8, 1, 4)
    assert (cost.partial_sram, cost.partial_dram) == (3 * 64 * 4, 0)
    blocks = Blocks(8, 8, 64, "mnk", 8, 8, 16)
    assert array_cycles(blocks, SMALL.dataflow, SMALL) == 4 * 4 * 16 \
        == timing.tensor_operand_cycles(8, 8, 64, SMALL)
    # With 16 x 16 blocks of C (1 KiB of partial sums) the block does not fit: illegal.
    assert not gemm_cost(16, 16, 64, "mnk", 16, 16, 16, SMALL, 1024, 1024, 1, 4).legal


def test_weight_stationary_partial_sums_by_hand():
    """WS 32 x 8 x 16 on 4x4: 4 K folds; a fold's column of partial sums is 32 x 4 int32 = 512 B,
    which fits, so 3 x 32 x 8 x 4 B are added in the ofmap SRAM and none go to DRAM. Cycles: the
    first load (4), 8 folds of max(32, 4), skew and drain (4 + 4 - 2 + 3 + 1)."""
    p = SMALL.replace(dataflow="weight_stationary")
    cost = gemm_cost(32, 8, 16, "mnk", 32, 8, 16, p, 512, 128, 1, 4)
    assert (cost.partial_sram, cost.partial_dram) == (3 * 32 * 8 * 4, 0)
    assert array_cycles(Blocks(32, 8, 16, "mnk", 32, 8, 16), p.dataflow, p) \
        == 4 + 8 * 32 + 4 + 4 - 2 + 3 + 1 == 270
    # Twice as many rows: a column of partial sums is 1 KiB and spills: each pass goes to DRAM.
    spilled = gemm_cost(64, 8, 16, "mnk", 64, 8, 16, p, 1024, 128, 1, 4)
    assert spilled.partial_dram == 3 * 64 * 8 * 4
    # Blocks of 32 rows keep the partial sums of a block on chip; B is loaded once per block.
    blocked = gemm_cost(64, 8, 16, "knm", 32, 8, 16, p, 1024, 128, 1, 4)
    assert (blocked.partial_dram, blocked.read_b, blocked.legal) == (0, 2 * 128, True)


def test_the_rtl_runs_tile_walks_and_not_a_k_split():
    assert runs_on_rtl(rtl_mapping(32, 32, 32), 32, 32, 32, SMALL)
    assert tile_walk(Mapping("mnk", 4, 16, 32), 32, 32, 32, SMALL) == ROW_MAJOR  # row blocks
    assert tile_walk(Mapping("nmk", 16, 16, 32), 32, 32, 32, SMALL) == TileWalk(0, 4)
    assert tile_walk(Mapping("mnk", 8, 8, 32), 32, 32, 32, SMALL) == TileWalk(2, 2)
    assert tile_walk(Mapping("mnk", 6, 16, 32), 32, 32, 32, SMALL) is None  # half a tile
    assert not runs_on_rtl(Mapping("mnk", 32, 32, 16), 32, 32, 32, SMALL)  # partial sums
    assert runs_on_rtl(Mapping("nmk", 16, 16, 32), 32, 32, 32, SMALL)  # column blocks
    assert not runs_on_rtl(rtl_mapping(32, 32, 32), 32, 32, 32,
                           SMALL.replace(dataflow="weight_stationary"))
    words = SMALL.tensor_buffer_words  # no DRAM port: the whole int32 result must fit the buffer
    assert runs_on_rtl(rtl_mapping(words // 4, 4, 8), words // 4, 4, 8, SMALL)
    assert not runs_on_rtl(rtl_mapping(words // 4 + 1, 4, 8), words // 4 + 1, 4, 8, SMALL)


def test_a_mapping_refuses_nonsense():
    with pytest.raises(ValueError, match=r"mapping order must be a permutation of 'mnk'; got 'mmk'"):
        Mapping("mmk", 1, 1, 1)
    with pytest.raises(ValueError, match=r"mapping block_k must be a positive int; got 0"):
        Mapping("mnk", 1, 1, 0)


params_strategy = st.builds(
    lambda rows, cols, df, kib: HardwareParams(rows=rows, cols=cols, lanes=1, dataflow=df,
                                               ifmap_sram_kib=kib, filter_sram_kib=kib,
                                               ofmap_sram_kib=kib, tensor_buffer_words=rows * cols),
    st.sampled_from([2, 4, 8]), st.sampled_from([2, 4, 8]), st.sampled_from(DATAFLOWS),
    st.sampled_from([1, 2, 8]))
dims = st.integers(1, 200)


@given(params_strategy, dims, dims, dims, st.sampled_from(ORDERS), st.data())
@settings(max_examples=150, deadline=None)
def test_no_mapping_beats_the_bounds(p, m, n, k, order, data):
    """Any mapping, legal or not: DRAM bytes >= compulsory and >= the capacity bound, cycles >=
    MACs / PEs."""
    bm, bn, bk = (data.draw(st.integers(1, d)) for d in (m, n, k))
    op = gemm(m, n, k)
    mapping = Mapping(order, bm, bn, bk)
    t = op_traffic(op, p, mapping=mapping)
    dram = t.dram_read + t.dram_write
    assert dram >= compulsory_bytes(op, p)
    assert dram >= capacity_bound_bytes(op, p)
    assert gemm_cycles(m, n, k, p, mapping=mapping) >= compute_bound_cycles(op, p)


@given(params_strategy, dims, dims, dims, st.sampled_from(["cycles", "energy", "edp"]))
@settings(max_examples=40, deadline=None)
def test_the_best_mapping_is_never_worse_than_the_rtl_schedule(p, m, n, k, objective):
    ops = gemm_op(m, n, k)
    rtl = estimate(ops, p, mapping="rtl").iloc[0]
    best = estimate(ops, p, mapping="best", objective=objective).iloc[0]
    value = {"cycles": lambda r: r["cycles"], "energy": lambda r: r["energy_pj"],
             "edp": lambda r: r["cycles"] * r["energy_pj"]}[objective]
    assert value(best) <= value(rtl) * (1 + 1e-12)


def pricer(op, p):
    """The row pricing `estimate` uses, as a function of a mapping (block sizes ints or arrays)."""
    sram_pj = sram_energy_table(DEFAULT_PJ, p)

    def price(mapping):
        t = op_traffic(op, p, mapping=mapping)
        return op_costs(op, t, gemm_cycles(op.m, op.n, op.k, p, mapping=mapping), p, DEFAULT_PJ,
                        sram_pj, "int8")

    return price


@pytest.mark.parametrize("dataflow", DATAFLOWS)
@pytest.mark.parametrize("m, n, k", [(12, 9, 20), (7, 12, 17), (24, 5, 8)])
def test_the_search_finds_the_brute_force_optimum(dataflow, m, n, k):
    """Every order and every block size 1..D of every dimension, priced one by one: the least
    objective among the legal ones (and the RTL's schedule) is what the search finds."""
    p = SMALL.replace(dataflow=dataflow)
    op = gemm(m, n, k)
    price = pricer(op, p)

    priced = [price(rtl_mapping(m, n, k))]
    for order, bm, bn, bk in product(ORDERS, range(1, m + 1), range(1, n + 1), range(1, k + 1)):
        costs = price(Mapping(order, bm, bn, bk))
        if bool(costs["legal"]):
            priced.append(costs)
    for objective, column in (("cycles", "cycles"), ("energy", "energy_pj")):
        brute = min(float(costs[column]) for costs in priced)
        found = best_mapping(op, p, price, objective)
        assert float(price(found)[column]) == pytest.approx(brute), objective


@pytest.mark.parametrize("dataflow", DATAFLOWS)
@pytest.mark.parametrize("m, n, k", [(64, 24, 40), (24, 64, 40), (40, 24, 64)])
def test_the_search_is_no_worse_than_every_tile_aligned_mapping(dataflow, m, n, k):
    """Shapes too large for every block size, where the loop order decides the traffic: every order
    and every block size of whole tiles, priced one by one, never beats the search's energy."""
    p = SMALL.replace(dataflow=dataflow)
    op = gemm(m, n, k)
    price = pricer(op, p)

    found = float(price(best_mapping(op, p, price, "energy"))["energy_pj"])
    for order in ORDERS:
        grid = np.meshgrid(*(np.arange(4, d + 1, 4) for d in (m, n, k)), indexing="ij")
        bm, bn, bk = (g.ravel() for g in grid)
        costs = price(_Candidates(order, bm, bn, bk))
        legal = np.broadcast_to(costs["legal"], bm.shape)
        if legal.any():
            energy = np.broadcast_to(costs["energy_pj"], bm.shape)
            assert found <= float(np.min(np.where(legal, energy, np.inf))) * (1 + 1e-12), order


class _Candidates:
    """Block sizes as arrays (many mappings at once), as the search prices them."""

    def __init__(self, order, bm, bn, bk):
        self.order, self.block_m, self.block_n, self.block_k = order, bm, bn, bk


def test_candidate_blocks_cover_every_block_count_of_a_small_dimension():
    blocks = candidate_blocks(20, 4)
    assert {-(-20 // b) for b in blocks} == set(range(1, 6))  # every number of whole-tile blocks
    assert set(blocks) >= {4, 8, 12, 20}  # tile-aligned sizes
    assert candidate_blocks(1, 16).tolist() == [1]


def test_vgg16_best_mapping_reaches_the_issue_targets():
    """VGG16 on CIFAR-10 shapes, batch 128, 16x16: the RTL schedule runs at 0.42 utilisation
    (output stationary) and far worse weight or input stationary; the best mappings lift all three
    above 0.8, within 1.3x of one another."""
    ops = lower("vgg16", (3, 32, 32), 128)
    utilisation = {}
    for dataflow in DATAFLOWS:
        p = HardwareParams(rows=16, cols=16, lanes=16, dataflow=dataflow)
        table = estimate(ops, p, mapping="best")
        utilisation[dataflow] = table["macs"].sum() / (256 * table["cycles"].sum())
    assert min(utilisation.values()) >= 0.8
    assert max(utilisation.values()) <= 1.3 * min(utilisation.values())


def mapping_tile_order(mapping: Mapping, m: int, n: int, k: int, p) -> list[tuple[int, int]]:
    """The output tiles of an output-stationary mapping, in the order its loops visit them:
    the block loops in `mapping.order`, then the array's m tiles, then its n tiles."""
    blocks = Blocks(m, n, k, mapping.order, mapping.block_m, mapping.block_n, mapping.block_k)
    size, order = blocks.size, []
    starts = {d: range(0, blocks.dims[d], size[d]) for d in "mnk"}

    def visit(depth, at):
        if depth == 3:
            for i in range(at["m"], min(at["m"] + size["m"], m), p.rows):
                for j in range(at["n"], min(at["n"] + size["n"], n), p.cols):
                    if (i, j) not in order:
                        order.append((i, j))
            return
        dim = mapping.order[depth]
        for start in starts[dim]:
            visit(depth + 1, {**at, dim: start})

    visit(0, {"m": 0, "n": 0, "k": 0})
    return order


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 40), st.integers(1, 40), st.integers(1, 8), st.sampled_from(ORDERS),
       st.integers(1, 12), st.integers(1, 12), st.booleans())
def test_the_tile_walk_visits_tiles_in_the_mappings_order(m, n, k, order, bm, bn, split_k):
    """Where `tile_walk` gives a walk, the datapath's tiles (`tile_grid`) come in the order the
    mapping's loops visit them; it gives none exactly for K splits and blocks of partial tiles."""
    p = SMALL
    mapping = Mapping(order, bm, bn, max(1, k // 2) if split_k else k)
    walk = tile_walk(mapping, m, n, k, p)
    aligned = all(size >= dim or size % unit == 0
                  for size, dim, unit in ((bm, m, p.rows), (bn, n, p.cols)))
    assert (walk is not None) == (aligned and not (split_k and k > 1))
    if walk is not None:
        assert tile_grid(m, n, p, walk) == mapping_tile_order(mapping, m, n, k, p)
