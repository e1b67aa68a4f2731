"""The ECP5 block RAMs of a design's memories (`niti_hw.perf.bram`): known answers by hand, and the
tensor buffer's count against the top's synthesis."""

from __future__ import annotations

import pandas as pd
from hypothesis import given
from hypothesis import strategies as st

from niti_hw.params import DEFAULT
from niti_hw.perf.bram import BRAM_DATA_BYTES, memory_bram, memory_brams
from niti_hw.perf.clock import REPORT


def test_default_design_takes_128_blocks_more_than_the_device_has():
    # 64 KiB / 2 KiB = 32 per SRAM; 16,384 int32 words = 64 KiB = 32: 4 x 32 = 128 > 108
    assert memory_brams(DEFAULT) == {"ifmap": 32, "filter": 32, "ofmap": 32, "tensor": 32}
    assert memory_bram(DEFAULT) == 128


def test_a_part_filled_block_is_a_whole_block():
    # 1 KiB -> 1; 3 KiB -> 2; 4 KiB -> 2 exactly; 1,025 words = 4,100 bytes -> 3 (4,096 is 2)
    params = DEFAULT.replace(ifmap_sram_kib=1, filter_sram_kib=3, ofmap_sram_kib=4,
                             tensor_buffer_words=1025)
    assert memory_brams(params) == {"ifmap": 1, "filter": 2, "ofmap": 2, "tensor": 3}
    assert memory_bram(params) == 8


@given(st.integers(1, 4096), st.integers(64, 1 << 20))
def test_blocks_are_the_fewest_that_hold_the_bytes(kib, words):
    params = DEFAULT.replace(ifmap_sram_kib=kib, tensor_buffer_words=words)
    blocks = memory_brams(params)
    for name, size in (("ifmap", kib * 1024), ("tensor", words * 4)):
        assert (blocks[name] - 1) * BRAM_DATA_BYTES < size <= blocks[name] * BRAM_DATA_BYTES


def test_tensor_buffer_count_is_what_the_top_synthesises():
    """The top (training_core) holds the default tensor buffer: its synthesis places as many
    DP16KD as the count gives."""
    report = pd.read_csv(REPORT)
    top = report[(report["unit"] == "training_core") & (report["size"] == DEFAULT.name)]
    assert len(top) and (top["ecp5_bram"] == memory_brams(DEFAULT)["tensor"]).all()
