"""The ECP5 block RAMs a design's on-chip memories take: their area, beside the logic's LUTs.

The cost model's memories are the three operand SRAMs and the int32 tensor buffer
(`cost.BUFFERS`); the synthesised systolic array holds none of them, so without this count a
larger SRAM looks free. On the ECP5 each memory is built from DP16KD blocks. A DP16KD holds
18 Kbit, but only in its 9-, 18- and 36-bit modes, where every ninth bit sits beside a byte (room
for parity): byte data gets 16 Kbit of it, 2048 bytes per block, the 2048 x 8 block RAM that
each byte lane of the RTL's scratchpad is. So a memory of B bytes takes ceil(B / 2048) blocks.

That is the least a memory can take. Banking for port width can take more: the scratchpad is
`cols` banks of four byte-wide memories, one block each at least, so it matches this count while
each bank is at least 2048 words deep (the default 16,384 words in 32 blocks at 4x4 and 8x8; the
top's synthesis places those 32 DP16KD) and takes more for wider arrays (64 at 16x16).

The LFE5U-45F has 108 DP16KD: 1,944 Kbit of sysMEM block RAM in 18 Kbit blocks (the ECP5 and
ECP5-5G Family Data Sheet, FPGA-DS-02012, table 1.1); nextpnr-ecp5 --45k reports the same
"DP16KD: 32/ 108" for the top.
"""

from __future__ import annotations

from math import ceil

from niti_hw.params import HardwareParams
from niti_hw.perf.cost import BUFFERS, buffer_kib

BRAM_DATA_BYTES = 2048
"""Bytes of byte-wide data one DP16KD holds (16 of its 18 Kbit)."""
ECP5_45F_BRAMS = 108
"""DP16KD blocks on the LFE5U-45F, the device `niti-hw synth` places on."""


def memory_brams(params: HardwareParams) -> dict[str, int]:
    """DP16KD blocks each on-chip memory (`cost.BUFFERS`) takes."""
    return {buffer: ceil(buffer_kib(buffer, params) * 1024 / BRAM_DATA_BYTES)
            for buffer in BUFFERS}


def memory_bram(params: HardwareParams) -> int:
    """DP16KD blocks of all the on-chip memories: the three SRAMs and the tensor buffer."""
    return sum(memory_brams(params).values())
