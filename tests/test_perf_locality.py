"""perf.locality (`--keep-on-chip`): tensor names that link producers to consumers, the bytes a
kept tensor saves by hand, and the properties that keep the option honest: never more DRAM, never
below the bounds, and ops that keep nothing costed exactly as without it."""

from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from niti_hw.params import DATAFLOWS, DEFAULT, HardwareParams
from niti_hw.perf.bounds import capacity_bound_bytes
from niti_hw.perf.cost import compulsory_bytes, estimate, fp32_ops, nbytes, op_traffic
from niti_hw.perf.fusion import fuse
from niti_hw.perf.locality import keep_on_chip
from niti_hw.perf.lowering import ACC, ACT, INPUT, Access, Op, lower
from niti_hw.perf.mapping import ORDERS, Mapping

TINY = DEFAULT.replace(ifmap_sram_kib=1, filter_sram_kib=1, ofmap_sram_kib=1)
"""1 KiB SRAMs: a kept tensor may take 512 bytes of each."""


def dram(table):
    return table["dram_read_bytes"] + table["dram_write_bytes"]


def int8_size(params):
    return lambda kind, count: nbytes(kind, count, "int8", params, 8)


def chain(a_values: int, read_again: bool = False) -> list[Op]:
    """ReLU -> GEMM (A: the ReLU's output, 16 x `a_values / 16`) -> round -> ReLU, by hand."""
    k = a_values // 16
    ops = [Op("r", "forward", "relu", elements=a_values,
              reads=(Access(ACT, a_values, "x"),), writes=(Access(ACT, a_values, "y"),)),
           Op("g", "forward", "gemm", 16, 40, k,
              reads=(Access(ACT, a_values, "y"), Access(ACT, k * 40, "w")),
              writes=(Access(ACC, 640, "c32"),)),
           Op("g", "forward", "round", elements=640, reads=(Access(ACC, 640, "c32"),),
              writes=(Access(ACT, 640, "c"),)),
           Op("s", "forward", "relu", elements=640, reads=(Access(ACT, 640, "c"),),
              writes=(Access(ACT, 640, "s"),))]
    if read_again:  # a later op needs y again, as a weight gradient needs its layer's input
        ops.append(Op("t", "forward", "relu", elements=a_values,
                      reads=(Access(ACT, a_values, "y"),), writes=(Access(ACT, a_values, "z"),)))
    return ops


@pytest.mark.parametrize("model, shape", [("lenet5", (1, 28, 28)), ("vgg-small-7", (3, 16, 16))])
@pytest.mark.parametrize("weight_bits", [8, 16])
def test_every_read_names_a_tensor_written_before_or_held_across_steps(model, shape, weight_bits):
    """Each tensor is written by one op; what an op reads was written earlier in the step, is the
    input batch, or is a layer's weights (written by its update, read by the next step)."""
    ops = lower(model, shape, 2, weight_bits=weight_bits)
    writers = Counter(a.tensor for op in ops for a in op.writes)
    assert all(writers.values()) and max(writers.values()) == 1 and "" not in writers
    written = set()
    for op in ops:
        for access in op.reads:
            assert access.tensor, op
            assert (access.tensor in written or access.tensor == INPUT
                    or access.tensor.endswith((".weight", ".weight8"))), (op, access)
        written |= {a.tensor for a in op.writes}
    gemm = next(op for op in ops if op.is_gemm)
    assert gemm.reads[1].tensor.endswith(".weight8" if weight_bits > 8 else ".weight")


def test_a_tensor_that_fits_skips_dram_both_ways():
    """y (512 int8 values) fits the 512 bytes of the ifmap SRAM a kept A may take: the GEMM does
    not fetch it and, as nothing else reads it, the ReLU does not store it: 2 x 512 bytes saved.
    c (640 values) does not fit the 512 of the ofmap SRAM and still goes through DRAM."""
    ops = chain(512)
    plain, kept = estimate(ops, TINY), estimate(ops, TINY, keep_on_chip=True)
    assert dram(plain).sum() - dram(kept).sum() == 2 * 512
    assert (dram(plain) - dram(kept)).tolist() == [512, 512, 0, 0]
    marked = keep_on_chip(ops, TINY, int8_size(TINY))
    assert marked[0].kept_out == (("y", "ifmap"),) and marked[0].unstored == ("y",)
    assert marked[1].kept_in == (("y", "ifmap"),)
    assert not marked[2].kept_out and not marked[3].kept_in
    # The ReLU writes y into the ifmap SRAM instead of the GEMM's fetch writing it there.
    assert (kept["sram_write_bytes"] - plain["sram_write_bytes"]).tolist() == [512, -512, 0, 0]
    assert kept["sram_read_bytes"].tolist() == plain["sram_read_bytes"].tolist()
    assert kept["compulsory_bytes"].sum() == plain["compulsory_bytes"].sum() - 2 * 512


def test_a_tensor_larger_than_its_half_moves_as_before():
    ops = chain(528)  # 528 bytes > 512
    plain, kept = estimate(ops, TINY), estimate(ops, TINY, keep_on_chip=True)
    assert plain.equals(kept)


def test_a_tensor_read_again_later_is_still_written_once():
    ops = chain(512, read_again=True)
    plain, kept = estimate(ops, TINY), estimate(ops, TINY, keep_on_chip=True)
    assert (dram(plain) - dram(kept)).tolist() == [0, 512, 0, 0, 0]  # the GEMM's fetch only
    assert kept["dram_write_bytes"].iloc[0] == 512


def test_streaming_consumer_reads_the_ofmap_sram():
    """LeNet-5, batch 1: conv1's rounded output (11,520 int8) fits half the 64 KiB ofmap SRAM,
    so the ReLU reads it there; the ReLU's output goes to the pooling the same way; neither is read
    again, so neither reaches DRAM. The ReLU still stores its mask (1,440 bytes) for later."""
    ops = lower("lenet5", (1, 28, 28), 1)
    plain, kept = estimate(ops, DEFAULT), estimate(ops, DEFAULT, keep_on_chip=True)
    relu = (kept["layer"] == "relu1") & (kept["op"] == "relu")
    assert dram(plain[relu]).item() == 2 * 11520 + 1440
    assert dram(kept[relu]).item() == 1440
    assert kept[relu]["sram_read_bytes"].item() == 11520  # from the ofmap SRAM
    assert kept[relu]["sram_write_bytes"].item() == 11520  # into it, for the pooling
    # With 16 KiB (8 KiB for a kept tensor) neither fits.
    small = DEFAULT.replace(ofmap_sram_kib=16)
    assert dram(estimate(ops, small, keep_on_chip=True)[relu]).item() == 2 * 11520 + 1440


def test_tensors_kept_for_one_consumer_share_its_buffer():
    """Two outputs of one op read by the next streaming op: 300 + 300 bytes do not both fit 512."""
    ops = [Op("p", "forward", "relu", elements=300, reads=(Access(ACT, 300, "x"),),
              writes=(Access(ACT, 300, "a"), Access(ACT, 300, "b"))),
           Op("q", "forward", "relu", elements=300,
              reads=(Access(ACT, 300, "a"), Access(ACT, 300, "b")),
              writes=(Access(ACT, 300, "c"),))]
    marked = keep_on_chip(ops, TINY, int8_size(TINY))
    assert marked[1].kept_in == (("a", "ofmap"),)


def test_int32_results_are_left_to_the_tensor_buffer():
    marked = keep_on_chip(lower("lenet5", (1, 28, 28), 1), DEFAULT, int8_size(DEFAULT))
    kept = [t for op in marked for t, _ in op.kept_in]
    assert kept and not [t for t in kept if t.endswith("32")]
    assert all(op.kept_in == () for op in marked if op.op in ("round", "bitwidth"))


def test_ops_overlap_their_own_dram_traffic_only():
    """Keeping a tensor removes bytes; ops still run one after another, each overlapping its own
    DRAM traffic with its own compute (`perf.locality`: the overlaps modelled)."""
    ops = lower("lenet5", (1, 28, 28), 8)
    params = DEFAULT.replace(dram_bytes_per_cycle=2.0)
    table = estimate(ops, params, keep_on_chip=True, fused=True)
    per_op = [max(c, -(-d // 2)) for c, d in zip(table["compute_cycles"], dram(table))]
    assert table["cycles"].tolist() == per_op
    plain = estimate(ops, params, fused=True)
    assert table["cycles"].sum() < plain["cycles"].sum()
    assert table["compute_cycles"].tolist() == plain["compute_cycles"].tolist()


def test_scalesim_timing_refuses_it():
    with pytest.raises(ValueError, match="keeping tensors on chip needs timing 'rtl'"):
        estimate(lower("lenet5", (1, 28, 28), 1), DEFAULT, timing_model="scalesim",
                 keep_on_chip=True)


memories = st.sampled_from([1, 2, 4, 16, 64])
steps = st.fixed_dictionaries({
    "model": st.sampled_from([("lenet5", (1, 28, 28)), ("vgg-small-7", (3, 16, 16))]),
    "batch": st.integers(1, 4), "ifmap": memories, "filter": memories, "ofmap": memories,
    "dataflow": st.sampled_from(DATAFLOWS), "fused": st.booleans(),
    "datapath": st.sampled_from(["int8", "fp32"]), "weight_bits": st.sampled_from([8, 16])})


def costed(step, mapping):
    model, shape = step["model"]
    params = DEFAULT.replace(ifmap_sram_kib=step["ifmap"], filter_sram_kib=step["filter"],
                             ofmap_sram_kib=step["ofmap"], dataflow=step["dataflow"])
    ops = lower(model, shape, step["batch"], weight_bits=step["weight_bits"])
    common = dict(fused=step["fused"], datapath=step["datapath"],
                  weight_bits=step["weight_bits"], mapping=mapping)
    plain = estimate(ops, params, **common)
    kept = estimate(ops, params, keep_on_chip=True, **common)
    ops = fuse(ops, params) if step["fused"] else ops
    ops = fp32_ops(ops) if step["datapath"] == "fp32" else ops
    marked = keep_on_chip(ops, params, lambda kind, count: nbytes(
        kind, count, step["datapath"], params, step["weight_bits"]))
    return plain, kept, marked


@given(steps)
@settings(max_examples=30)
def test_keeping_never_adds_dram_and_never_beats_the_bounds(step):
    """RTL schedule: every op moves at most the bytes it moved without the option (a kept tensor
    only removes transfers); every op stays at or above its compulsory traffic and, for GEMMs, the
    capacity bound; ops that keep nothing are costed exactly as without the option."""
    plain, kept, marked = costed(step, "rtl")
    assert len(marked) == len(kept) == len(plain)
    assert (dram(kept) <= dram(plain)).all()
    assert (dram(kept) >= kept["compulsory_bytes"]).all()
    assert (dram(kept) >= kept["capacity_bound_bytes"]).all()
    assert (kept["compulsory_bytes"] <= plain["compulsory_bytes"]).all()
    untouched = [i for i, op in enumerate(marked) if not op.kept_in and not op.kept_out]
    assert kept.iloc[untouched].equals(plain.iloc[untouched])


@given(steps)
@settings(max_examples=8)
def test_best_mapping_with_keeping_never_costs_more(step):
    """The search prices a GEMM with its kept operand on chip: no op takes more cycles, the step
    moves no more DRAM bytes, and ops that keep nothing get the same mapping and costs."""
    plain, kept, marked = costed(step, "best")
    assert (kept["cycles"] <= plain["cycles"]).all()
    assert dram(kept).sum() <= dram(plain).sum()
    assert (dram(kept) >= kept["compulsory_bytes"]).all()
    untouched = [i for i, op in enumerate(marked) if not op.kept_in and not op.kept_out]
    assert kept.iloc[untouched].equals(plain.iloc[untouched])


SMALL = HardwareParams(rows=4, cols=4, lanes=4, ifmap_sram_kib=1, filter_sram_kib=1,
                       ofmap_sram_kib=1, tensor_buffer_words=4096)
dims = st.integers(1, 120)


@given(st.sampled_from(DATAFLOWS), dims, dims, dims, st.sampled_from(ORDERS), st.data())
@settings(max_examples=100)
def test_no_mapping_of_a_gemm_with_a_kept_operand_beats_the_bounds(dataflow, m, n, k, order,
                                                                   data):
    """A GEMM whose operands the op before left on chip (where they fit half their SRAM): any
    mapping still moves at least its compulsory traffic and the capacity bound."""
    params = SMALL.replace(dataflow=dataflow)
    a, b = Access(ACT, m * k, "a"), Access(ACT, k * n, "b")
    fits = {"a": m * k <= 512, "b": k * n <= 512}
    kept = tuple((t, buffer) for t, buffer in (("a", "ifmap"), ("b", "filter")) if fits[t])
    op = Op("g", "forward", "gemm", m, n, k, reads=(a, b), writes=(Access(ACC, m * n, "c"),),
            kept_in=kept)
    mapping = Mapping(order, *(data.draw(st.integers(1, d)) for d in (m, n, k)))
    t = op_traffic(op, params, mapping=mapping)
    moved = t.dram_read + t.dram_write
    assert moved >= compulsory_bytes(op, params)
    assert moved >= capacity_bound_bytes(op, params)
    whole = op_traffic(Op("g", "forward", "gemm", m, n, k, reads=(a, b),
                          writes=(Access(ACC, m * n, "c"),)), params, mapping=mapping)
    assert moved == whole.dram_read + whole.dram_write - sum(
        x.count for x, t in ((a, "a"), (b, "b")) if fits[t])

