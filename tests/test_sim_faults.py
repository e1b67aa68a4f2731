"""A broken DUT fails every bench with a clear message, and does not hang (Icarus, small runs).

Each unit (and the tensor datapath, update, ReLU and max-pool units, whose benches are built on
the same harness) is wrapped in `sim/faults.py`'s StreamFault, which drops, duplicates or flips
bit 0 of its sixth output beat; the bench must report, naming the unit, the missing beat (with the
count seen), the extra beat, or the wrong value against the golden model.
"""

import re
import sys
from pathlib import Path

import pytest

from niti_hw.params import HardwareParams
from niti_hw.sim_runner import BenchFailed, run_bench

pytest.importorskip("amaranth", reason="needs the rtl extra: pip install 'niti-hw[rtl]'")

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "sim"))
from faults import StreamFault  # noqa: E402

pytestmark = pytest.mark.sim

SMALL = HardwareParams(rows=2, cols=2, lanes=2, lfsr_lanes=4, tensor_buffer_words=256)
BENCHES = [  # (unit, bench, name the bench gives the unit, extra environment)
    ("systolic_array", "bench_systolic_array", "systolic array 2x2", {"NITI_HW_LONG_K": "16"}),
    ("bitwidth_detector", "bench_bitwidth_detector", "bitwidth detector lanes=2", {}),
    ("shift_round_pseudo", "bench_shift_round", "shift_round pseudo lanes=2",
     {"NITI_HW_MODE": "pseudo"}),
    ("datapath", "bench_datapath", "datapath", {}),
    ("update_unit_w16", "bench_update_unit", "update_unit", {"NITI_HW_WEIGHT_BITS": "16"}),
    ("relu", "bench_relu", "relu forward lanes=2", {"NITI_HW_RELU": "forward"}),
    ("max_pool_backward_k2", "bench_max_pool", "max_pool backward k=2 lanes=2",
     {"NITI_HW_POOL": "backward", "NITI_HW_KERNEL": "2"}),
]
MESSAGES = {
    "drop": r"(?:saw|only) (\d+) of (\d+)",  # the count seen, of the count expected
    "extra": r"extra beat",
    "flip": r"RTL gave .+, golden model ",
}


@pytest.mark.parametrize("fault", sorted(MESSAGES))
@pytest.mark.parametrize("unit, bench, name, env", BENCHES, ids=[b[0] for b in BENCHES])
def test_broken_dut_fails_the_bench(tmp_path, unit, bench, name, env, fault):
    with pytest.raises(BenchFailed) as failure:
        run_bench(unit, SMALL, bench, "icarus", tmp_path, wrap=lambda c: StreamFault(c, fault, 5),
                  env={"NITI_HW_VECTORS": "60", **env})
    message = str(failure.value)
    first = message.split("; ")[0]  # the random-stimulus test, the first in every bench
    assert name in first, message
    found = re.search(MESSAGES[fault], first)
    assert found, message
    if fault == "drop":
        seen, expected = map(int, found.groups())
        assert seen == expected - 1, message


def test_intact_dut_passes_the_same_run(tmp_path):
    """The wrapper with no fault in range (beat 10**6) leaves the unit intact: the bench passes."""
    run_bench("bitwidth_detector", SMALL, "bench_bitwidth_detector", "icarus", tmp_path,
              wrap=lambda c: StreamFault(c, "flip", 10**6), env={"NITI_HW_VECTORS": "60"})
