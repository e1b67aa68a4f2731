"""HardwareParams: defaults, JSON round trip, and refusals that name the valid range."""

import pytest

from niti_hw.golden import INT32_SAFE_K
from niti_hw.params import DEFAULT, HardwareParams


def test_default_is_valid_and_round_trips_through_json():
    assert HardwareParams.from_json(DEFAULT.to_json()) == DEFAULT
    assert DEFAULT.max_k == INT32_SAFE_K - 1
    assert DEFAULT.lfsr_groups == DEFAULT.lfsr_lanes // DEFAULT.lanes


def test_memory_and_clock_fields_round_trip_through_json():
    params = DEFAULT.replace(dataflow="weight_stationary", tensor_buffer_words=4096,
                             ifmap_sram_kib=128, dram_bytes_per_cycle=2.5, clock_mhz=150.0)
    assert HardwareParams.from_json(params.to_json()) == params


def test_rtl_json_holds_only_what_the_generators_read():
    """The Verilog header: memory sizes and the clock do not change the RTL."""
    assert DEFAULT.rtl_json() == DEFAULT.replace(dram_bytes_per_cycle=1.0, clock_mhz=99.0).rtl_json()
    assert DEFAULT.rtl_json() != DEFAULT.replace(rows=4).rtl_json()


def test_frozen():
    with pytest.raises(AttributeError):
        DEFAULT.rows = 4


@pytest.mark.parametrize("changes, message", [
    ({"rows": 0}, r"rows must be in 1\.\.1024.*got 0"),
    ({"cols": 1025}, r"cols must be in 1\.\.1024.*got 1025"),
    ({"acc_bits": 12}, r"acc_bits must be in 16\.\.32 \(an int8 x int8 product needs 16 bits"),
    ({"lanes": 3}, r"lanes must divide cols.*got lanes=3, valid choices: \[1, 2, 4, 8\]"),
    ({"lanes": 8, "lfsr_lanes": 12}, r"lanes must divide lfsr_lanes=12.*valid choices: \[1, 2, 3, 4, 6, 12\]"),
    ({"dataflow": "row_stationary"},
     r"dataflow must be one of \('output_stationary', 'weight_stationary', 'input_stationary'\)"),
    ({"tensor_buffer_words": 63},
     r"tensor_buffer_words must be in 64\.\.\d+ \(it must hold at least one 8x8 tile\); got 63"),
    ({"ifmap_sram_kib": 0}, r"ifmap_sram_kib must be in 1\.\.1048576; got 0"),
    ({"ofmap_sram_kib": 1.5}, r"ofmap_sram_kib must be an int in 1\.\.1048576; got 1\.5"),
    ({"dram_bytes_per_cycle": 0}, r"dram_bytes_per_cycle must be a number > 0 \(bytes per cycle\); got 0"),
    ({"dram_bytes_per_cycle": float("inf")}, r"dram_bytes_per_cycle must be a number > 0"),
    ({"clock_mhz": -5.0}, r"clock_mhz must be a number > 0 \(MHz, or None"),
    ({"round_mode": "floor"}, r"round_mode must be one of"),
    ({"rows": 2.0}, r"rows must be an int in 1\.\.1024; got 2\.0"),
    ({"lfsr_seed": -1}, r"lfsr_seed must be in 0\.\.4294967295"),
])
def test_impossible_parameters_are_refused(changes, message):
    with pytest.raises(ValueError, match=message):
        DEFAULT.replace(**changes)


def test_narrow_accumulator_limits_k():
    assert HardwareParams(acc_bits=16).max_k == 2  # 2 * 127**2 < 2**15 <= 3 * 127**2


def test_the_rtl_refuses_arrays_the_cost_model_takes():
    big = DEFAULT.replace(rows=128, cols=128, lanes=8)
    with pytest.raises(ValueError, match=r"the RTL is generated for arrays up to 64x64; got 128x128 "
                                         r"\(the cost model, niti-hw estimate, takes up to 1024x1024\)"):
        big.check_rtl()
    DEFAULT.replace(rows=64, cols=64).check_rtl()
