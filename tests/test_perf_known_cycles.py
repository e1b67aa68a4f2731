"""perf.timing against cycle counts measured once on the RTL, so that the fast tests guard every
latency constant, not only the cocotb benches (which need an HDL simulator).

Every number below was printed by `python sim/measure_cycles.py`: the Amaranth units in
`amaranth.sim`, in-process, from reset, with no input gaps and no backpressure, counted from the
first beat accepted (the first operand beat on the tensor datapath) to the last output beat taken,
inclusive, as the benches count. They are literals on purpose: a latency constant changed in
`niti_hw/perf/timing.py` without the RTL changing with it fails here.
"""

import pytest

from niti_hw.params import HardwareParams
from niti_hw.perf import timing


def params(rows: int, cols: int, lanes: int) -> HardwareParams:
    """The hardware of sim/measure_cycles.py."""
    return HardwareParams(rows=rows, cols=cols, lanes=lanes,
                          lfsr_lanes=16 if 16 % lanes == 0 else lanes, tensor_buffer_words=256)


@pytest.mark.parametrize("lanes, values, measured", [
    (2, 10, 14),  # the same in nearest, pseudo and stochastic mode
    (4, 4, 10), (4, 48, 21),
])
def test_shift_round(lanes, values, measured):
    assert timing.round_cycles(values, params(2, 4, lanes)) == measured


@pytest.mark.parametrize("lanes, values, measured", [(4, 4, 4), (4, 72, 21), (2, 14, 10)])
def test_bitwidth_detector(lanes, values, measured):
    """To B of the tensor."""
    assert timing.detector_cycles(values, params(4, 4, lanes)) == measured


@pytest.mark.parametrize("lanes, weights, measured", [
    (4, 4, 5), (4, 37, 14), (2, 9, 9), (8, 100, 17),  # 16, 16, 8 and 24 stored weight bits
])
def test_weight_update(lanes, weights, measured):
    assert timing.update_cycles(weights, params(8, 8, lanes)) == measured


@pytest.mark.parametrize("lanes, values, measured", [(4, 4, 3), (4, 37, 12), (2, 9, 7)])
def test_relu(lanes, values, measured):
    """Relu and ReluBackward alike."""
    assert timing.relu_cycles(values, params(4, 4, lanes)) == measured


@pytest.mark.parametrize("kernel, windows, measured", [
    (2, 1, 6), (2, 5, 22), (3, 3, 29), (1, 4, 6),
])
def test_max_pool(kernel, windows, measured):
    """MaxPool and MaxPoolBackward alike (4 and 2 lanes: the lanes do not count)."""
    assert timing.maxpool_cycles(windows, kernel) == measured


@pytest.mark.parametrize("rows, cols, lanes, m, n, k, measured", [
    (2, 4, 2, 5, 7, 3, 67), (2, 4, 2, 2, 4, 12, 42), (2, 4, 2, 1, 1, 1, 28),
    (4, 4, 4, 8, 8, 16, 108), (8, 8, 8, 8, 8, 8, 52), (8, 8, 8, 20, 12, 30, 246),
])
def test_tensor_datapath(rows, cols, lanes, m, n, k, measured):
    """Every tile through the array, B over the whole tensor, the k latch, the scratchpad replay
    through the rounder; 18 cycles from the cfg beat to the first operand in every case."""
    p = params(rows, cols, lanes)
    assert timing.tensor_gemm_cycles(m, n, k, p) == measured
    assert timing.TENSOR_CONFIG_CYCLES == 18


@pytest.mark.parametrize("lanes, samples, classes, measured, row_to_row", [
    (4, 1, 1, 40, None), (4, 1, 10, 175, None), (4, 3, 4, 231, 73), (2, 5, 7, 602, 118),
    (8, 2, 10, 338, 163),
])
def test_loss_gradient(lanes, samples, classes, measured, row_to_row):
    """From the cfg beat to the last error beat; rows one after the other (lanes do not count)."""
    assert timing.loss_cycles(samples, classes) == measured
    if row_to_row is not None:
        assert timing.loss_row_cycles(classes) == row_to_row
