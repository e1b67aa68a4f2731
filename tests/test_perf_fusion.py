"""perf.fusion: ReLU and pooling folded into the passes before them, and what that saves."""

import pytest

from niti_hw.params import DEFAULT
from niti_hw.perf import timing
from niti_hw.perf.cost import estimate
from niti_hw.perf.fusion import fuse
from niti_hw.perf.lowering import ACC, ACT, INDEX, MASK, lower


def by_name(ops):
    return {(op.layer, op.phase, op.op): op for op in ops}


def test_lenet5_fuses_relu_and_pooling_into_the_replay():
    ops = by_name(fuse(lower("lenet5", (1, 28, 28), 1), DEFAULT))
    conv1 = ops["conv1", "forward", "round_relu_pool"]
    # 20 x 24 x 24 conv output -> ReLU mask of every value, 20 x 12 x 12 pooled values and indices.
    assert conv1.reads == ((ACC, 11520),)
    assert conv1.writes == ((MASK, 11520), (ACT, 2880), (INDEX, 2880))
    assert ops["fc1", "forward", "round_relu"].writes == ((ACT, 500), (MASK, 500))
    assert ops["fc2", "error", "round_relu_backward"].reads == ((ACC, 500), (MASK, 500))
    assert ops["pool2", "error", "pool_relu_backward"].reads == \
        ((ACT, 800), (INDEX, 800), (MASK, 3200))
    names = {op.op for op in ops.values()}
    assert not names & {"relu", "pool", "relu_backward"}  # every one found a pass to join


def test_fused_passes_keep_their_cycles_and_drop_the_intermediate_bytes():
    ops = lower("lenet5", (1, 28, 28), 1)
    plain = estimate(ops, DEFAULT)
    fused = estimate(ops, DEFAULT, fused=True)
    row = fused[(fused["layer"] == "conv1") & (fused["op"] == "round_relu_pool")].iloc[0]
    assert row["compute_cycles"] == timing.tensor_replay_cycles(576, 20, DEFAULT)
    # conv1 forward, batch 1: the round's 11,520 int8 values written, then read by ReLU, written
    # again and read by pooling: 4 x 11,520 bytes stay on chip.
    before = plain[plain["layer"].isin(["conv1", "relu1", "pool1"]) & (plain["phase"] == "forward")
                   & (plain["op"] != "gemm")]
    saved = (before["dram_read_bytes"] + before["dram_write_bytes"]).sum() \
        - (row["dram_read_bytes"] + row["dram_write_bytes"])
    assert saved == 4 * 11520
    assert fused["dram_read_bytes"].sum() < plain["dram_read_bytes"].sum()
    assert fused["macs"].sum() == plain["macs"].sum()
    assert (fused["runs_on"][fused["op"].str.contains("relu|pool")] == "analytical").all()


def test_pooling_stays_apart_when_its_line_buffer_does_not_fit():
    """VGG16's pools on 32x32 inputs need one input row: 2,048 values (32 x 64 ... 4 x 512), the
    last 2 x 512. Half of a 1 KiB ofmap SRAM holds 512, so only ReLU joins the replay; 4 KiB holds
    every line buffer."""
    plain = lower("vgg16", (3, 32, 32), 1)
    assert [op.line_values for op in plain if op.op == "pool"] == [2048] * 4 + [1024]
    small = [op.op for op in fuse(plain, DEFAULT.replace(ofmap_sram_kib=1))]
    assert small.count("pool") == 5 and small.count("round_relu_pool") == 0
    large = [op.op for op in fuse(plain, DEFAULT.replace(ofmap_sram_kib=4))]
    assert large.count("pool") == 0 and large.count("round_relu_pool") == 5


def test_dram_overlaps_compute_inside_an_op_only():
    """The model overlaps an op's DRAM traffic with its own compute, never with its neighbours': a
    step's cycles are the sum over ops of max(compute, DRAM / bandwidth)."""
    table = estimate(lower("lenet5", (1, 28, 28), 8), DEFAULT.replace(dram_bytes_per_cycle=2.0))
    dram = table["dram_read_bytes"] + table["dram_write_bytes"]
    per_op = [max(c, -(-d // 2)) for c, d in zip(table["compute_cycles"], dram)]
    assert table["cycles"].tolist() == per_op
    assert table["cycles"].sum() > max(table["compute_cycles"].sum(), dram.sum() / 2)


@pytest.mark.parametrize("model, shape", [("lenet5", (1, 28, 28)), ("vgg16", (3, 32, 32))])
def test_fusion_never_moves_more_or_computes_less(model, shape):
    ops = lower(model, shape, 2)
    plain, fused = estimate(ops, DEFAULT), estimate(ops, DEFAULT, fused=True)
    for column in ("dram_read_bytes", "dram_write_bytes", "cycles", "energy_pj"):
        assert fused[column].sum() <= plain[column].sum(), column
    assert fused["macs"].sum() == plain["macs"].sum()
