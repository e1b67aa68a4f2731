"""perf.lowering against what the golden network actually computes in one training step."""

import numpy as np
import pytest

from niti_hw.golden import QTensor, RoundingPolicy
from niti_hw.models import MODELS
from niti_hw.params import DEFAULT
from niti_hw.perf.lowering import ACC, ACT, WEIGHT, check_reductions, gemm_op, lower
from niti_hw.train.build import build_network


class HardwareSchedulePolicy(RoundingPolicy):
    """The lowering is the hardware's schedule: a conv's input error as E @ W^T into columns, then
    col2im, as the datapath model runs it. The golden model's own default takes one GEMM over the
    padded error where that is cheaper, the same integers (tests/test_golden_conv_error.py)."""

    fold_conv_errors = True


def golden_step_record(monkeypatch, name, chw, batch):
    """Run one golden train_step on the hardware's schedule, recording every GEMM (m, n, k) and
    every narrowed tensor size."""
    import niti_hw.golden.layers as layers

    gemms, narrowed, gradients = [], [], []
    matmul = RoundingPolicy.matmul
    narrow = RoundingPolicy.narrow
    weight_gradient = layers.weight_gradient

    def recording_matmul(self, a, b):
        gemms.append((a.shape[0], b.shape[1], a.shape[1]))
        return matmul(self, a, b)

    def recording_narrow(self, acc, kind):
        narrowed.append((kind, int(np.asarray(acc).size)))
        return narrow(self, acc, kind)

    def recording_gradient(g32, m_u, policy):
        gradients.append(int(g32.size))
        return weight_gradient(g32, m_u, policy)

    monkeypatch.setattr(RoundingPolicy, "matmul", recording_matmul)
    monkeypatch.setattr(RoundingPolicy, "narrow", recording_narrow)
    monkeypatch.setattr(layers, "weight_gradient", recording_gradient)
    c, h, w = chw
    built = build_network(MODELS[name], (h, w, c), classes=10, seed=0)
    rng = np.random.default_rng(0)
    x = QTensor(rng.integers(-127, 128, (batch, h, w, c)).astype(np.int8), -7)
    built.net.train_step(x, rng.integers(0, 10, batch), 3, HardwareSchedulePolicy(seed=1))
    return gemms, narrowed, gradients


def test_lenet5_gemms_are_the_golden_networks(monkeypatch):
    gemms, narrowed, gradients = golden_step_record(monkeypatch, "lenet5", (1, 28, 28), 3)
    ops = lower("lenet5", (1, 28, 28), 3, classes=10)
    assert [(op.m, op.n, op.k) for op in ops if op.is_gemm] == gemms
    # Every int32 tensor narrowed with a whole-tensor B: forward activations, then errors.
    rounded = [(op.phase, op.elements) for op in ops if op.op == "round" and op.phase != "update"]
    assert [("activation" if phase == "forward" else "error", size) for phase, size in rounded] \
        == narrowed
    # Updates follow each layer's gradient GEMM (last layer first); golden applies them at the end.
    assert [op.elements for op in ops if op.op == "round" and op.phase == "update"] \
        == gradients[::-1]
    # The first layer propagates no error.
    assert [op.layer for op in ops if op.is_gemm and op.phase == "error"][-1] == "conv2"


def test_vgg_small_on_a_small_input_matches_the_golden_network(monkeypatch):
    gemms, _, _ = golden_step_record(monkeypatch, "vgg-small-7", (3, 8, 8), 2)
    assert [(op.m, op.n, op.k) for op in lower("vgg-small-7", (3, 8, 8), 2) if op.is_gemm] == gemms


def test_step_structure_and_wide_weights():
    ops = lower("lenet5", (1, 28, 28), 64, weight_bits=16)
    assert [op.phase for op in ops if op.phase == "loss"] == ["loss"]
    weighted = ["conv1", "conv2", "fc1", "fc2"]
    updates = [op for op in ops if op.op == "weight_update"]
    assert [op.layer for op in updates] == weighted[::-1]
    # 16-bit weights: the update unit also writes the int8 copy the next forward pass reads.
    assert all(dict(op.writes) == {WEIGHT: op.elements, ACT: op.elements} for op in updates)
    plain = [op for op in lower("lenet5", (1, 28, 28), 64) if op.op == "weight_update"]
    assert all(dict(op.writes) == {WEIGHT: op.elements} for op in plain)
    assert {op.phase for op in ops} == {"forward", "loss", "error", "gradient", "update"}
    # conv1 forward output at batch 64: 64 * 24 * 24 * 20 int32 values (the 737,280).
    (conv1,) = [op for op in ops if op.layer == "conv1" and op.op == "round" and op.phase == "forward"]
    assert conv1.elements == 737_280
    assert dict(conv1.reads) == {ACC: 737_280}


def test_overlapping_conv_error_takes_a_detect_pass_of_its_own():
    ops = lower("vgg-small-7", (3, 8, 8), 2)
    detect = [op for op in ops if op.op == "bitwidth" and op.layer == "conv2" and op.phase == "error"]
    assert len(detect) == 1 and detect[0].reads  # 3x3 stride 1: col2im adds after the drain
    forward = [op for op in ops if op.op == "bitwidth" and op.phase == "forward"]
    assert all(not op.reads for op in forward)  # B taken on the GEMM's drain


@pytest.mark.parametrize("args, message", [
    (("lenet5", (1, 8, 8), 4),
     r"lenet5 does not fit a 1x8x8 \(CxHxW\) input: layer 3 Conv\(out_channels=50, kernel=5, "
     r"stride=1, padding=0\) fails on shape \(2, 2, 20\)"),
    (("lenet5", (1, 28), 4), r"input shape must be C x H x W positive ints"),
    (("lenet5", (1, 28, 28), 0), r"batch must be a positive int; got 0"),
    (("resnet", (3, 32, 32), 1), r"unknown model 'resnet'; valid models: lenet5"),
])
def test_bad_input_is_refused_by_name(args, message):
    with pytest.raises(ValueError, match=message):
        lower(*args)


def test_single_gemm():
    ops = gemm_op(5, 6, 7)
    assert [(op.op, op.m, op.n, op.k) for op in ops][0] == ("gemm", 5, 6, 7)
    assert [op.op for op in ops] == ["gemm", "bitwidth", "round"]
    with pytest.raises(ValueError, match=r"K must be a positive int; got 0"):
        gemm_op(1, 1, 0)


@pytest.mark.parametrize("model, chw", [("lenet5", (1, 28, 28)), ("vgg16", (3, 32, 32)),
                                        ("vgg-small-7", (3, 32, 32))])
def test_the_largest_batch_named_is_the_largest_that_fits(model, chw):
    """A refused step names a batch that passes, and one more image is refused again."""
    workload = f"{model} batch 4096"
    with pytest.raises(ValueError, match=rf"^{workload}: conv1 gradient GEMM reduces over K = "
                                         r"[\d,]+ products; .* use --batch (\d+) or less$") as caught:
        check_reductions(lower(model, chw, 4096), DEFAULT, workload, batch=4096)
    fit = int(caught.value.args[0].rsplit("--batch ", 1)[1].split()[0])
    check_reductions(lower(model, chw, fit), DEFAULT, "", batch=fit)
    with pytest.raises(ValueError, match=rf"use --batch {fit} or less"):
        check_reductions(lower(model, chw, fit + 1), DEFAULT, "", batch=fit + 1)


def test_the_limit_follows_the_accumulator_and_a_depth_is_no_batch_matter():
    narrow = DEFAULT.replace(acc_bits=24)  # holds 520 products: LeNet-5's fc1 has K = 800
    with pytest.raises(ValueError, match=r"fc1 forward GEMM reduces over K = 800 products; a "
                                         r"24-bit accumulator holds at most 520 exactly, and the "
                                         r"RTL's tiling refuses it; no batch fits"):
        check_reductions(lower("lenet5", (1, 28, 28), 1), narrow, "lenet5", batch=1)
    check_reductions(gemm_op(8, 8, DEFAULT.max_k), DEFAULT, "--gemm")
    with pytest.raises(ValueError, match=r"^--gemm: the GEMM reduces over K = 133,143 products; "
                                         r".*; K must be 133,142 or less$"):
        check_reductions(gemm_op(8, 8, DEFAULT.max_k + 1), DEFAULT, "--gemm")
